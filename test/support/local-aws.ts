/**
 * Test helpers around the local AWS stand-ins (see tools/local-servers.ts).
 */
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordsCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import type { AwsConfig, AwsEndpoints } from '../../src/aws/clients.js';
import { localAwsConfig } from '../../tools/local-servers.js';
import type { ShardBatch, SourceRecord } from '../../src/aws/kinesis-source.js';
import type { ShardCheckpoint } from '../../src/checkpoint/checkpoint-store.js';

export {
  freePort,
  findOnPath,
  localAwsConfig,
  motoServerUnavailableReason,
  startDynalite,
  startKinesalite,
  startMotoServer,
  type LocalServer,
} from '../../tools/local-servers.js';

/**
 * Config for a test's own Kinesis client (creating streams, putting input, reading output):
 * the SDK retries transient failures, as the product's classes do for theirs. Without it a
 * keep-alive socket that kinesalite closes on a loaded machine fails the test with
 * "TimeoutError: socket hang up" (clients handed to the classes under test keep
 * localAwsConfig, so their own retries stay countable).
 */
export function testClientConfig(endpoints: AwsEndpoints): AwsConfig {
  return localAwsConfig(endpoints, { sdkRetriesForStreams: 5 });
}

export const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until true; throws `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleepMs(25);
  }
}

export async function waitForStreamActive(client: KinesisClient, name: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    async () => (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE',
    timeoutMs,
    `stream ${name} ACTIVE`,
  );
}

export async function createStream(client: KinesisClient, name: string, shardCount: number): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }));
  await waitForStreamActive(client, name);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function text(data: Uint8Array): string {
  return dec.decode(data);
}

/** Puts `{"id": ...}` JSON records straight through the API (not via KinesisSink). */
export async function putIds(client: KinesisClient, stream: string, ids: string[], partitionKey: (id: string) => string = (id) => `pk-${id}`): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const res = await client.send(
      new PutRecordsCommand({
        StreamName: stream,
        Records: chunk.map((id) => ({ PartitionKey: partitionKey(id), Data: enc.encode(JSON.stringify({ id })) })),
      }),
    );
    if (res.FailedRecordCount) throw new Error(`setup PutRecords had ${res.FailedRecordCount} failures`);
  }
}

export function idOf(r: SourceRecord): string {
  return (JSON.parse(text(r.data)) as { id: string }).id;
}

/** Every record currently in the stream, shard by shard, via the raw API. */
export async function readWholeStream(client: KinesisClient, stream: string): Promise<{ shardId: string; data: Uint8Array; partitionKey: string }[]> {
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const out: { shardId: string; data: Uint8Array; partitionKey: string }[] = [];
  for (const s of shards) {
    let it = (await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (it) {
      const res = await client.send(new GetRecordsCommand({ ShardIterator: it }));
      for (const r of res.Records ?? []) out.push({ shardId: s.ShardId!, data: r.Data!, partitionKey: r.PartitionKey! });
      if ((res.Records ?? []).length === 0) break;
      it = res.NextShardIterator;
    }
  }
  return out;
}

/**
 * Pulls batches from `iterable` until `done(all)` holds, with a timeout.
 * Returns the batches in delivery order; the iterator is left open (the
 * caller stops the source).
 */
export async function collect(
  it: AsyncIterator<ShardBatch>,
  done: (batches: ShardBatch[], records: SourceRecord[]) => boolean,
  timeoutMs: number,
  onBatch?: (b: ShardBatch) => void,
): Promise<{ batches: ShardBatch[]; records: SourceRecord[] }> {
  const batches: ShardBatch[] = [];
  const records: SourceRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(batches, records)) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new Error(`collect timed out with ${records.length} records in ${batches.length} batches`);
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      it.next(),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), remaining);
      }),
    ]);
    clearTimeout(timer);
    if (next === 'timeout') throw new Error(`collect timed out with ${records.length} records in ${batches.length} batches`);
    if (next.done) throw new Error(`source ended early with ${records.length} records`);
    batches.push(next.value);
    records.push(...next.value.records);
    onBatch?.(next.value);
  }
  return { batches, records };
}

/** Merges batch checkpoints as a consumer would after handling each batch. */
export function mergeCheckpoints(batches: ShardBatch[], into: Record<string, ShardCheckpoint> = {}): Record<string, ShardCheckpoint> {
  for (const b of batches) into[b.shardId] = b.checkpoint;
  return into;
}
