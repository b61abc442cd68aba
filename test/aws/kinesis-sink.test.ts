import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { KinesisSink, KinesisSinkError, MAX_RECORD_BYTES, type SinkEntry } from '../../src/aws/kinesis-sink.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createStream, localAwsConfig, readWholeStream, startKinesalite, text, type LocalServer } from '../support/local-aws.js';

let kinesalite: LocalServer;
let proxy: FaultProxy;
let direct: KinesisClient;
let viaProxy: KinesisClient;

beforeAll(async () => {
  kinesalite = await startKinesalite();
  proxy = await startFaultProxy({ target: kinesalite.endpoint, seed: 7 });
  direct = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  viaProxy = createKinesisClient(localAwsConfig({ kinesis: proxy.endpoint }));
});

afterAll(async () => {
  direct?.destroy();
  viaProxy?.destroy();
  await proxy?.close();
  await kinesalite?.stop();
});

const enc = new TextEncoder();
const entries = (prefix: string, n: number): SinkEntry[] =>
  Array.from({ length: n }, (_, i) => ({ partitionKey: `${prefix}-${i % 37}`, data: enc.encode(JSON.stringify({ id: `${prefix}-${i}` })) }));

function fastSink(stream: string, extra: Partial<ConstructorParameters<typeof KinesisSink>[0]> = {}): KinesisSink {
  return new KinesisSink({ client: viaProxy, streamName: stream, backoff: { baseDelayMs: 10, maxDelayMs: 100 }, ...extra });
}

describe('KinesisSink', () => {
  it('retries only the failed entries of partial failures; every record lands exactly once', async () => {
    await createStream(direct, 'sink-partial', 2);
    proxy.resetStats();
    proxy.setRules([{ target: 'PutRecords', fault: 'partial', entryProbability: 0.3, times: 6 }]);
    try {
      const sink = fastSink('sink-partial');
      const input = entries('p', 1200);
      await sink.put(input);
      const st = sink.stats();
      const px = proxy.stats();
      expect(px.injectedEntries).toBeGreaterThan(100);
      // Only failed entries were re-sent, and each entry reached Kinesis once.
      expect(st.retriedRecords).toBe(px.injectedEntries);
      expect(px.forwardedEntries).toBe(input.length);
      expect(st.recordsPut).toBe(input.length);
      expect(st.throttles).toBe(px.injectedEntries);
      // 1200 records = 3 requests of <= 500, plus retry rounds.
      expect(px.requests['PutRecords']).toBe(3 + st.retries);

      const stored = (await readWholeStream(direct, 'sink-partial')).map((r) => (JSON.parse(text(r.data)) as { id: string }).id);
      expect(stored.length).toBe(input.length);
      expect(new Set(stored)).toEqual(new Set(input.map((e) => (JSON.parse(text(e.data)) as { id: string }).id)));
    } finally {
      proxy.setRules([]);
    }
  });

  it('retries a whole request after a 500 or throttling answer (nothing was written)', async () => {
    await createStream(direct, 'sink-500', 1);
    proxy.resetStats();
    proxy.setRules([
      { target: 'PutRecords', fault: 'internal', calls: [1] },
      { target: 'PutRecords', fault: 'throttle', calls: [2] },
    ]);
    try {
      const sink = fastSink('sink-500');
      await sink.put(entries('i', 10));
      expect(sink.stats()).toMatchObject({ recordsPut: 10, retries: 2, retriedRecords: 20, throttles: 1, transientFailures: 1, putRecordsCalls: 3 });
      expect(await readWholeStream(direct, 'sink-500')).toHaveLength(10);
    } finally {
      proxy.setRules([]);
    }
  });

  it('splits requests at 500 records and at 5 MiB including partition keys', async () => {
    // A recording stub: kinesalite takes seconds per MiB, and only the request shapes matter here.
    const requests: { count: number; bytes: number }[] = [];
    const stub = {
      send: async (cmd: { input: { Records: { Data: Uint8Array; PartitionKey: string }[] } }) => {
        const recs = cmd.input.Records;
        requests.push({ count: recs.length, bytes: recs.reduce((a, r) => a + r.Data.byteLength + Buffer.byteLength(r.PartitionKey), 0) });
        return { FailedRecordCount: 0, Records: recs.map((_, i) => ({ SequenceNumber: String(i), ShardId: 'shardId-000000000000' })) };
      },
    } as unknown as KinesisClient;
    const sink = new KinesisSink({ client: stub, streamName: 'stub' });
    await sink.put(entries('n', 1201));
    expect(requests.map((r) => r.count)).toEqual([500, 500, 201]);

    requests.length = 0;
    // 1000 KiB data + a 200-byte key: five fit in 5 MiB (5,120,000 + 1,000 bytes), a sixth does not.
    const key = 'k'.repeat(200);
    await sink.put(Array.from({ length: 12 }, () => ({ partitionKey: key, data: new Uint8Array(1000 * 1024) })));
    expect(requests.map((r) => r.count)).toEqual([5, 5, 2]);
    expect(Math.max(...requests.map((r) => r.bytes))).toBeLessThanOrEqual(5 * 1024 * 1024);
    expect(sink.stats().recordsPut).toBe(1213);
  });

  it('rejects a record over 1 MiB before sending anything', async () => {
    proxy.resetStats();
    const sink = fastSink('sink-bytes');
    const tooBig = { partitionKey: 'pk', data: new Uint8Array(MAX_RECORD_BYTES - 1) }; // + 2-byte key = 1 MiB + 1
    await expect(sink.put([...entries('ok', 3), tooBig])).rejects.toThrow(/Entry 3: record is 1048577 bytes .* at most 1048576 bytes \(1 MiB\)/);
    await expect(sink.put([{ partitionKey: '', data: enc.encode('x') }])).rejects.toThrow(/partition key must be 1\.\.256/);
    await expect(sink.put([{ partitionKey: 'k', data: enc.encode('x'), explicitHashKey: String(2n ** 128n) }])).rejects.toThrow(/explicitHashKey/);
    expect(proxy.stats().requests['PutRecords'] ?? 0).toBe(0);
  });

  it('gives up after the retry cap with a clear error', async () => {
    await createStream(direct, 'sink-cap', 1);
    proxy.resetStats();
    proxy.setRules([
      { target: 'PutRecords', fault: 'partial', calls: [1], entryIndexes: [1, 3] },
      { target: 'PutRecords', fault: 'partial', entryProbability: 1 },
    ]);
    try {
      const sink = fastSink('sink-cap', { maxAttempts: 4 });
      const err = await sink.put(entries('cap', 5)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KinesisSinkError);
      expect((err as KinesisSinkError).message).toMatch(/2 of 5 records still not accepted after 4 attempts \(last error: ProvisionedThroughputExceededException/);
      expect((err as KinesisSinkError).failedEntries).toBe(2);
      expect(sink.stats()).toMatchObject({ recordsPut: 3, retries: 3, retriedRecords: 6 });
    } finally {
      proxy.setRules([]);
    }
  });

  it('fails at once on a non-retryable error', async () => {
    const sink = new KinesisSink({ client: direct, streamName: 'no-such-stream' });
    await expect(sink.put(entries('x', 2))).rejects.toThrow(/PutRecords to no-such-stream failed: ResourceNotFoundException/);
    expect(sink.stats().retries).toBe(0);
  });
});
