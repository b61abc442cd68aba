import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutRecordsCommand, SplitShardCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { KinesisSource, countOpenShards, type KinesisSourceOptions, type ShardBatch, type SourceRecord } from '../../src/aws/kinesis-source.js';
import { aggregate } from '../../src/aws/kpl.js';
import type { Checkpoint } from '../../src/checkpoint/checkpoint-store.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import {
  collect,
  createStream,
  idOf,
  localAwsConfig,
  mergeCheckpoints,
  putIds,
  startKinesalite,
  waitFor,
  waitForStreamActive,
  type LocalServer,
} from '../support/local-aws.js';

let kinesalite: LocalServer;
let proxy: FaultProxy;
let direct: KinesisClient;
let viaProxy: KinesisClient;

beforeAll(async () => {
  kinesalite = await startKinesalite();
  proxy = await startFaultProxy({ target: kinesalite.endpoint, seed: 42 });
  direct = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  viaProxy = createKinesisClient(localAwsConfig({ kinesis: proxy.endpoint }));
});

afterAll(async () => {
  direct?.destroy();
  viaProxy?.destroy();
  await proxy?.close();
  await kinesalite?.stop();
});

const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);

function source(opts: Partial<KinesisSourceOptions> & { streamName: string }): KinesisSource {
  return new KinesisSource({ client: direct, idlePollIntervalMs: 200, shardSyncIntervalMs: 0, ...opts });
}

/** Asserts that within each shard the ids arrive in the order they were put. */
function expectPerShardOrder(records: SourceRecord[], putOrder: string[]): void {
  const rank = new Map(putOrder.map((id, i) => [id, i]));
  const lastByShard = new Map<string, { rank: number; seq: bigint }>();
  for (const r of records) {
    const cur = { rank: rank.get(idOf(r))!, seq: BigInt(r.sequenceNumber) };
    const prev = lastByShard.get(r.shardId);
    if (prev) {
      expect(cur.rank).toBeGreaterThan(prev.rank);
      expect(cur.seq > prev.seq).toBe(true);
    }
    lastByShard.set(r.shardId, cur);
  }
}

describe('KinesisSource', () => {
  it('reads every record of a 2-shard stream from TRIM_HORIZON, in per-shard order', async () => {
    await createStream(direct, 'src-trim', 2);
    const all = ids('t', 300);
    await putIds(direct, 'src-trim', all);
    const src = source({ streamName: 'src-trim', startPosition: { type: 'TRIM_HORIZON' }, getRecordsLimit: 50 });
    const it = src.start()[Symbol.asyncIterator]();
    const { records, batches } = await collect(it, (_b, r) => r.length >= all.length, 20_000);
    await src.stop();
    expect(records.map(idOf).sort()).toEqual([...all].sort());
    expect(new Set(records.map((r) => r.shardId)).size).toBe(2);
    expectPerShardOrder(records, all);
    // Bounded batches and a position to checkpoint for each.
    for (const b of batches) {
      expect(b.records.length).toBeLessThanOrEqual(50);
      if (b.records.length > 0) expect(b.checkpoint.sequenceNumber).toBe(b.records.at(-1)!.sequenceNumber);
    }
    const st = src.stats();
    expect(st.recordsRead).toBe(all.length);
    expect(st.throttles).toBe(0);
  });

  it('LATEST sees only records put after it started, and checkpoints an AT_TIMESTAMP start', async () => {
    await createStream(direct, 'src-latest', 2);
    await putIds(direct, 'src-latest', ids('old', 40));
    const src = source({ streamName: 'src-latest' });
    const it = src.start()[Symbol.asyncIterator]();
    // Each shard announces itself with an empty first batch once its iterator exists.
    const first = await collect(it, (b) => new Set(b.map((x) => x.shardId)).size === 2, 10_000);
    for (const b of first.batches) {
      expect(b.records).toEqual([]);
      expect(b.checkpoint.sequenceNumber).toBe('AT_TIMESTAMP');
      expect(Date.parse(b.checkpoint.timestamp!)).toBeLessThan(Date.now());
    }
    const fresh = ids('new', 40);
    await putIds(direct, 'src-latest', fresh);
    const { records } = await collect(it, (_b, r) => r.length >= fresh.length, 10_000);
    await src.stop();
    expect(records.map(idOf).sort()).toEqual(fresh);
  });

  it('a LATEST start saved before any record resumes without skipping records put while stopped', async () => {
    await createStream(direct, 'src-latest-restart', 1);
    await putIds(direct, 'src-latest-restart', ids('old', 10));
    await new Promise((r) => setTimeout(r, 20));
    const src1 = source({ streamName: 'src-latest-restart', latestSafetyMarginMs: 0 });
    const first = await collect(src1.start()[Symbol.asyncIterator](), (b) => b.length >= 1, 10_000);
    await src1.stop();
    const cp: Checkpoint = { shards: mergeCheckpoints(first.batches), updatedAt: new Date().toISOString() };
    expect(cp.shards['shardId-000000000000']!.sequenceNumber).toBe('AT_TIMESTAMP');

    const whileDown = ids('down', 15);
    await putIds(direct, 'src-latest-restart', whileDown);
    const src2 = source({ streamName: 'src-latest-restart' });
    const { records } = await collect(src2.start(cp)[Symbol.asyncIterator](), (_b, r) => r.length >= whileDown.length, 10_000);
    await src2.stop();
    expect(records.map(idOf)).toEqual(whileDown);
  });

  it('AT_TIMESTAMP starts at the first record that arrived at or after the timestamp', async () => {
    await createStream(direct, 'src-ts', 1);
    await putIds(direct, 'src-ts', ids('before', 20));
    await new Promise((r) => setTimeout(r, 50));
    const at = new Date();
    await new Promise((r) => setTimeout(r, 50));
    const later = ids('after', 20);
    await putIds(direct, 'src-ts', later);
    // (kinesalite only answers AT_TIMESTAMP when some record is at/after it; Kinesis always does.)
    const src = source({ streamName: 'src-ts', startPosition: { type: 'AT_TIMESTAMP', timestamp: at } });
    const { records, batches } = await collect(src.start()[Symbol.asyncIterator](), (_b, r) => r.length >= later.length, 10_000);
    await src.stop();
    expect(records.map(idOf)).toEqual(later);
    expect(batches[0]!.checkpoint.sequenceNumber).toMatch(/^\d+$/);
  });

  it('resumes from a checkpoint: nothing lost, nothing before the checkpoint repeated', async () => {
    await createStream(direct, 'src-resume', 2);
    const firstPart = ids('a', 200);
    await putIds(direct, 'src-resume', firstPart);

    const src1 = source({ streamName: 'src-resume', startPosition: { type: 'TRIM_HORIZON' }, getRecordsLimit: 20 });
    const it1 = src1.start()[Symbol.asyncIterator]();
    const handled = await collect(it1, (_b, r) => r.length >= 80, 20_000);
    const cp: Checkpoint = { shards: mergeCheckpoints(handled.batches), updatedAt: new Date().toISOString() };
    await src1.stop();
    expect(Object.keys(cp.shards).sort()).toEqual(['shardId-000000000000', 'shardId-000000000001']);

    const secondPart = ids('b', 100);
    await putIds(direct, 'src-resume', secondPart);
    const expected = new Set([...firstPart, ...secondPart]);
    for (const r of handled.records) expected.delete(idOf(r));

    const src2 = source({ streamName: 'src-resume', startPosition: { type: 'LATEST' } });
    const it2 = src2.start(cp)[Symbol.asyncIterator]();
    const resumed = await collect(it2, (_b, r) => r.length >= expected.size, 20_000);
    await src2.stop();
    const got = resumed.records.map(idOf);
    expect(new Set(got).size).toBe(got.length);
    expect(got.sort()).toEqual([...expected].sort());
  });

  it('follows a shard split mid-stream: all records, parent before children', async () => {
    await createStream(direct, 'src-split', 1);
    const before = ids('p', 60);
    await putIds(direct, 'src-split', before);
    const src = source({ streamName: 'src-split', startPosition: { type: 'TRIM_HORIZON' }, getRecordsLimit: 10 });
    const it = src.start()[Symbol.asyncIterator]();
    const part1 = await collect(it, (_b, r) => r.length >= 20, 10_000);

    await direct.send(
      new SplitShardCommand({ StreamName: 'src-split', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 127n).toString() }),
    );
    await waitForStreamActive(direct, 'src-split');
    const after = ids('c', 60);
    await putIds(direct, 'src-split', after);

    const part2 = await collect(it, (_b, r) => part1.records.length + r.length >= before.length + after.length, 20_000);
    await src.stop();
    const batches = [...part1.batches, ...part2.batches];
    const records = [...part1.records, ...part2.records];
    expect(records.map(idOf).sort()).toEqual([...before, ...after].sort());

    const parent = 'shardId-000000000000';
    const lastParent = records.map((r) => r.shardId).lastIndexOf(parent);
    const firstChild = records.findIndex((r) => r.shardId !== parent);
    expect(lastParent).toBeLessThan(firstChild);
    expect(records.slice(0, lastParent + 1).map(idOf)).toEqual(before);

    const endBatch = batches.find((b) => b.shardEnded)!;
    expect(endBatch.shardId).toBe(parent);
    expect(endBatch.checkpoint.ended).toBe(true);
    expect(endBatch.childShardIds?.sort()).toEqual(['shardId-000000000001', 'shardId-000000000002']);
    // No child batch is delivered before the parent's end marker.
    const endIdx = batches.indexOf(endBatch);
    expect(batches.slice(0, endIdx).every((b) => b.shardId === parent)).toBe(true);
    expect(new Set(records.filter((r) => r.shardId !== parent).map((r) => r.shardId)).size).toBe(2);
    expectPerShardOrder(records, [...before, ...after]);
    // With both children in the checkpoint, the ended parent can be dropped from it.
    const cp = mergeCheckpoints(batches);
    expect(src.prunableShardIds(cp)).toEqual([parent]);
    const { 'shardId-000000000002': _dropped, ...withoutOneChild } = cp;
    expect(src.prunableShardIds(withoutOneChild)).toEqual([]);
  });

  it('resuming with an ended parent starts its children at TRIM_HORIZON', async () => {
    // Uses the split stream from the previous test: the parent is closed, two children hold 'c-*' ids.
    const cp: Checkpoint = {
      shards: { 'shardId-000000000000': { sequenceNumber: 'SHARD_END', ended: true } },
      updatedAt: new Date().toISOString(),
    };
    const src = source({ streamName: 'src-split' }); // LATEST would skip the children's records
    const it = src.start(cp)[Symbol.asyncIterator]();
    const { records } = await collect(it, (_b, r) => r.length >= 60, 10_000);
    await src.stop();
    expect(records.map(idOf).sort()).toEqual(ids('c', 60));
    expect(records.every((r) => r.shardId !== 'shardId-000000000000')).toBe(true);
  });

  it('renews an expired iterator from the last record read', async () => {
    await createStream(direct, 'src-expired', 1);
    const all = ids('e', 50);
    await putIds(direct, 'src-expired', all);
    proxy.resetStats();
    proxy.setRules([{ target: 'GetRecords', fault: 'expired-iterator', calls: [3] }]);
    try {
      const src = new KinesisSource({
        client: viaProxy,
        streamName: 'src-expired',
        startPosition: { type: 'TRIM_HORIZON' },
        getRecordsLimit: 10,
        idlePollIntervalMs: 200,
        shardSyncIntervalMs: 0,
      });
      const it = src.start()[Symbol.asyncIterator]();
      const { records } = await collect(it, (_b, r) => r.length >= all.length, 15_000);
      await src.stop();
      expect(records.map(idOf)).toEqual(all); // one shard: exact order, no gap, no repeat
      expect(src.stats().expiredIterators).toBe(1);
      expect(src.stats().getShardIteratorCalls).toBe(2);
      expect(proxy.stats().injected['GetRecords:expired-iterator']).toBe(1);
    } finally {
      proxy.setRules([]);
    }
  });

  it('backs off and retries on throttling and 500s without losing or repeating records', async () => {
    await createStream(direct, 'src-throttle', 2);
    const all = ids('th', 200);
    await putIds(direct, 'src-throttle', all);
    proxy.resetStats();
    proxy.setRules([
      { target: 'ListShards', fault: 'throttle', calls: [1] },
      { target: 'GetShardIterator', fault: 'internal', calls: [1] },
      { target: 'GetRecords', fault: 'throttle', probability: 0.3 },
      { target: 'GetRecords', fault: 'internal', calls: [5, 6] },
    ]);
    try {
      const src = new KinesisSource({
        client: viaProxy,
        streamName: 'src-throttle',
        startPosition: { type: 'TRIM_HORIZON' },
        getRecordsLimit: 20,
        idlePollIntervalMs: 200,
        shardSyncIntervalMs: 0,
        backoff: { baseDelayMs: 50, maxDelayMs: 400 },
      });
      const it = src.start()[Symbol.asyncIterator]();
      const { records } = await collect(it, (_b, r) => r.length >= all.length, 30_000);
      await src.stop();
      const got = records.map(idOf);
      expect(new Set(got).size).toBe(got.length);
      expect(got.sort()).toEqual([...all].sort());
      expectPerShardOrder(records, all);
      const injected = proxy.stats().injected;
      const totalInjected = Object.values(injected).reduce((a, b) => a + b, 0);
      const st = src.stats();
      expect(injected['GetRecords:throttle']).toBeGreaterThan(0);
      expect(st.retries).toBe(totalInjected);
      expect(st.throttles).toBe((injected['GetRecords:throttle'] ?? 0) + (injected['ListShards:throttle'] ?? 0));
      expect(st.backoffMs).toBeGreaterThan(0);
    } finally {
      proxy.setRules([]);
    }
  });

  it('reads ahead exactly up to the per-shard buffer when the consumer is slow, then resumes as it takes batches', async () => {
    await createStream(direct, 'src-backpressure', 1);
    const all = ids('bp', 40);
    await putIds(direct, 'src-backpressure', all);
    const src = source({ streamName: 'src-backpressure', startPosition: { type: 'TRIM_HORIZON' }, getRecordsLimit: 5, maxBufferedBatchesPerShard: 2 });
    const it = src.start()[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    // The consumer pauses: the reader fills its buffer (lower bound: it did read ahead) and parks (upper bound).
    await waitFor(() => src.stats().shardsWaitingForSpace === 1, 10_000, 'the reader to park on a full buffer');
    let st = src.stats();
    expect(st.batchesYielded).toBe(1);
    expect(st.getRecordsCalls).toBe(3); // the batch taken + 2 buffered
    expect(st.recordsRead).toBe(15);
    // Taking one batch frees one slot: exactly one more call, then parked again.
    const second = await it.next();
    expect(second.done).toBe(false);
    await waitFor(() => src.stats().shardsWaitingForSpace === 1 && src.stats().getRecordsCalls === 4, 10_000, 'one more read');
    st = src.stats();
    expect(st.batchesYielded).toBe(2);
    expect(st.recordsRead).toBe(20);
    // A consumer that keeps taking gets everything, in order.
    const rest = await collect(it, (_b, r) => r.length >= all.length - 10, 20_000);
    await src.stop();
    expect([...first.value!.records, ...second.value!.records, ...rest.records].map(idOf)).toEqual(all);
  });

  it('de-aggregates KPL records into user records with sub-sequence numbers, and resumes inside one', async () => {
    await createStream(direct, 'src-kpl', 1);
    const users = Array.from({ length: 5 }, (_, i) => ({
      partitionKey: `user-${i % 2}`,
      data: new TextEncoder().encode(JSON.stringify({ id: `u${i}` })),
      ...(i === 3 ? { explicitHashKey: '12345' } : {}),
    }));
    await direct.send(
      new PutRecordsCommand({
        StreamName: 'src-kpl',
        Records: [
          { PartitionKey: 'plain', Data: new TextEncoder().encode(JSON.stringify({ id: 'plain-1' })) },
          { PartitionKey: 'agg', Data: aggregate(users) },
          // Looks aggregated (magic) but its digest is wrong: must pass through untouched.
          { PartitionKey: 'bogus', Data: Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...new Array<number>(20).fill(7)]) },
        ],
      }),
    );
    const src = source({ streamName: 'src-kpl', startPosition: { type: 'TRIM_HORIZON' } });
    const { records } = await collect(src.start()[Symbol.asyncIterator](), (_b, r) => r.length >= 7, 10_000);
    await src.stop();
    expect(records.map((r) => r.subSequence)).toEqual([undefined, 0, 1, 2, 3, 4, undefined]);
    expect(records.slice(1, 6).map(idOf)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect(records.slice(1, 6).map((r) => r.partitionKey)).toEqual(['user-0', 'user-1', 'user-0', 'user-1', 'user-0']);
    expect(records[4]!.explicitHashKey).toBe('12345');
    expect(new Set(records.slice(1, 6).map((r) => r.sequenceNumber)).size).toBe(1);
    expect(records[6]!.data.byteLength).toBe(24);
    expect(records[6]!.deaggregationError).toBe('MD5 digest mismatch');
    expect(records.slice(0, 6).every((r) => r.deaggregationError === undefined)).toBe(true);
    expect(src.stats()).toMatchObject({ aggregatedRecords: 1, deaggregationErrors: 1, kinesisRecordsRead: 3, recordsRead: 7 });

    // A record-level checkpoint inside the aggregate resumes right after that user record.
    const aggSeq = records[1]!.sequenceNumber;
    const src2 = source({ streamName: 'src-kpl' });
    const cp: Checkpoint = { shards: { 'shardId-000000000000': { sequenceNumber: aggSeq, subSequence: 2 } }, updatedAt: new Date().toISOString() };
    const resumed = await collect(src2.start(cp)[Symbol.asyncIterator](), (_b, r) => r.length >= 3, 10_000);
    await src2.stop();
    expect(resumed.records.map((r) => (r.subSequence === undefined ? r.data.byteLength : idOf(r)))).toEqual(['u3', 'u4', 24]);
  });

  it('pages through ListShards with NextToken (without StreamName on later pages)', async () => {
    const calls: { name: string; input: Record<string, unknown> }[] = [];
    const fake = {
      send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = cmd.constructor.name;
        calls.push({ name, input: cmd.input });
        if (name === 'ListShardsCommand') {
          if (cmd.input['NextToken'] === undefined) return { Shards: [{ ShardId: 'shardId-000000000000' }], NextToken: 'page2' };
          if (cmd.input['NextToken'] === 'page2') return { Shards: [{ ShardId: 'shardId-000000000001' }], NextToken: 'page3' };
          return { Shards: [{ ShardId: 'shardId-000000000002' }] };
        }
        if (name === 'GetShardIteratorCommand') return { ShardIterator: `it-${String(cmd.input['ShardId'])}` };
        if (name === 'GetRecordsCommand') return { Records: [], NextShardIterator: cmd.input['ShardIterator'], MillisBehindLatest: 0 };
        throw new Error(`unexpected ${name}`);
      },
    } as unknown as KinesisClient;
    const src = new KinesisSource({ client: fake, streamName: 'paged', shardSyncIntervalMs: 0 });
    const first = await collect(src.start()[Symbol.asyncIterator](), (b) => b.length >= 3, 5_000);
    await src.stop();
    expect(first.batches.map((b: ShardBatch) => b.shardId).sort()).toEqual(['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002']);
    const lists = calls.filter((c) => c.name === 'ListShardsCommand').map((c) => c.input);
    expect(lists).toEqual([{ StreamName: 'paged' }, { NextToken: 'page2' }, { NextToken: 'page3' }]);
  });

  it('uses ChildShards from GetRecords: a merged child starts at TRIM_HORIZON only after both parents ended', async () => {
    // Scripted Kinesis: shards A and B are merged into C. A ends early, B later.
    const data: Record<string, string[]> = {
      'shardId-000000000000': ['a1', 'a2'],
      'shardId-000000000001': ['b1', 'b2', 'b3', 'b4', 'b5'],
      'shardId-000000000002': ['c1', 'c2'],
    };
    const log: string[] = [];
    const child = { ShardId: 'shardId-000000000002', ParentShards: ['shardId-000000000000', 'shardId-000000000001'], HashKeyRange: { StartingHashKey: '0', EndingHashKey: '1' } };
    const fake = {
      send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = cmd.constructor.name;
        const input = cmd.input;
        if (name === 'ListShardsCommand') {
          log.push('list');
          return { Shards: [{ ShardId: 'shardId-000000000000' }, { ShardId: 'shardId-000000000001' }] };
        }
        if (name === 'GetShardIteratorCommand') {
          log.push(`iterator ${String(input['ShardId'])} ${String(input['ShardIteratorType'])}`);
          return { ShardIterator: `${String(input['ShardId'])}:0` };
        }
        const [shard, pos] = String(input['ShardIterator']).split(':') as [string, string];
        const recs = data[shard]!;
        const i = Number(pos);
        if (i < recs.length) {
          const r = { SequenceNumber: String(1000 + i), PartitionKey: 'k', Data: new TextEncoder().encode(JSON.stringify({ id: recs[i] })) };
          return { Records: [r], NextShardIterator: `${shard}:${i + 1}`, MillisBehindLatest: 0 };
        }
        if (shard === 'shardId-000000000002') return { Records: [], NextShardIterator: `${shard}:${i}`, MillisBehindLatest: 0 };
        log.push(`end ${shard}`);
        return { Records: [], MillisBehindLatest: 0, ChildShards: [child] };
      },
    } as unknown as KinesisClient;
    const src = new KinesisSource({ client: fake, streamName: 'merged', startPosition: { type: 'TRIM_HORIZON' }, shardSyncIntervalMs: 0, idlePollIntervalMs: 200 });
    const { records, batches } = await collect(src.start()[Symbol.asyncIterator](), (_b, r) => r.length >= 9, 10_000);
    await src.stop();
    const order = records.map(idOf);
    expect(order.slice(-2)).toEqual(['c1', 'c2']);
    expect(log.filter((l) => l === 'list')).toHaveLength(1);
    expect(log).toContain('iterator shardId-000000000002 TRIM_HORIZON');
    expect(log.indexOf('iterator shardId-000000000002 TRIM_HORIZON')).toBeGreaterThan(log.indexOf('end shardId-000000000001'));
    const ends = batches.filter((b) => b.shardEnded);
    expect(ends.map((b) => b.shardId).sort()).toEqual(['shardId-000000000000', 'shardId-000000000001']);
    expect(ends.every((b) => b.childShardIds?.[0] === 'shardId-000000000002')).toBe(true);
    expect(batches.findIndex((b) => b.shardId === 'shardId-000000000002')).toBeGreaterThan(batches.indexOf(ends[1]!));
  });

  it('countOpenShards counts a split parent as closed and its two children as open', async () => {
    await createStream(direct, 'src-count', 2);
    expect(await countOpenShards(direct, { streamName: 'src-count' })).toBe(2);
    await direct.send(
      new SplitShardCommand({ StreamName: 'src-count', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 126n).toString() }),
    );
    await waitForStreamActive(direct, 'src-count');
    expect(await countOpenShards(direct, { streamName: 'src-count' })).toBe(3);
    await expect(countOpenShards(direct, { streamName: 'no-such-stream' })).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('ends the iteration with a clear error for a stream that does not exist', async () => {
    const src = source({ streamName: 'no-such-stream' });
    await expect(collect(src.start()[Symbol.asyncIterator](), () => false, 5_000)).rejects.toThrow(/ListShards on no-such-stream failed: ResourceNotFoundException/);
    await waitFor(() => src.stats().shardsReading === 0, 1_000, 'readers stopped');
  });
});
