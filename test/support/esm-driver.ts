/**
 * A stand-in for the Lambda Kinesis event source mapping, for tests and the
 * bench: reads each shard of a (kinesalite) stream in order and invokes a
 * handler with batches of up to B records, the way the mapping does:
 *
 * - one invocation at a time per shard, in sequence order;
 * - `batchItemFailures`: retry from the lowest reported sequence number;
 * - a function error (throw, crash, kill): retry, bisecting the batch first
 *   when `bisect` is set, up to `maxRetries` for one batch;
 * - `Invoker`s decide where the handler runs: in-process, or in a child
 *   process that can be replaced (cold start) or SIGKILLed mid-batch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type KinesisClient, type _Record } from '@aws-sdk/client-kinesis';
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';

export interface ShardRecords {
  shardId: string;
  records: _Record[];
}

/** Every record of every shard, in order (TRIM_HORIZON to the current end). */
export async function readShards(kinesis: KinesisClient, stream: string): Promise<ShardRecords[]> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const out: ShardRecords[] = [];
  for (const s of shards) {
    const records: _Record[] = [];
    let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (it !== undefined) {
      const res = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      records.push(...(res.Records ?? []));
      if ((res.Records ?? []).length === 0) break;
      it = res.NextShardIterator;
    }
    out.push({ shardId: s.ShardId!, records });
  }
  return out;
}

/** The event Lambda would send for these records of one shard. */
export function kinesisEvent(streamArn: string, shardId: string, records: _Record[]): KinesisStreamEvent {
  return {
    Records: records.map(
      (r): KinesisStreamRecord => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: r.PartitionKey!,
          sequenceNumber: r.SequenceNumber!,
          data: Buffer.from(r.Data!).toString('base64'),
          approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp ?? new Date(0)).getTime() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${r.SequenceNumber!}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::000000000000:role/rcf-stream-test',
        awsRegion: 'us-east-1',
        eventSourceARN: streamArn,
      }),
    ),
  };
}

export interface Invoker {
  invoke(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse>;
  close(): Promise<void>;
}

/** The handler in this process. */
export function inProcessInvoker(handler: (e: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>): Invoker {
  return { invoke: (e) => handler(e), close: () => Promise.resolve() };
}

export class FunctionError extends Error {
  override readonly name = 'FunctionError';
}

/** A container: a child node process running test/support/lambda-invoker.mjs (the built handler). */
export class ChildContainer implements Invoker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  #waiting: { resolve: (r: KinesisStreamBatchResponse) => void; reject: (e: Error) => void } | undefined;
  #stderr = '';
  #exited = false;
  #diedMidInvocation = false;

  constructor(root: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [join(root, 'test', 'support', 'lambda-invoker.mjs')], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.#stderr += d.toString();
      if (this.#stderr.length > 256 * 1024) this.#stderr = this.#stderr.slice(-128 * 1024);
    });
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => ((markReady = resolve), (failReady = reject)));
    const lines = createInterface({ input: this.child.stdout! });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: true; ok?: boolean; response?: KinesisStreamBatchResponse; error?: string };
      if (msg.ready) return markReady();
      const w = this.#waiting;
      this.#waiting = undefined;
      if (msg.ok) w?.resolve(msg.response!);
      else w?.reject(new FunctionError(msg.error ?? 'function error'));
    });
    this.child.on('exit', (code, signal) => {
      this.#exited = true;
      this.#diedMidInvocation = this.#waiting !== undefined;
      const e = new FunctionError(`container exited (${signal ?? code}); stderr tail:\n${this.#stderr.slice(-2000)}`);
      failReady(e);
      this.#waiting?.reject(e);
      this.#waiting = undefined;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  stderr(): string {
    return this.#stderr;
  }

  /** True once the container died while an invocation was waiting for its answer. */
  get diedMidInvocation(): boolean {
    return this.#diedMidInvocation;
  }

  /**
   * Arms the next invocation: the container SIGKILLs itself as the handler starts its `n`-th
   * HTTP request (1 = before any), so the kill lands mid-batch whatever the machine's speed.
   * An invocation with fewer requests completes and disarms it.
   */
  killAtRequest(n: number): void {
    this.child.stdin!.write(`${JSON.stringify({ killAtRequest: n })}\n`);
  }

  async invoke(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
    await this.ready;
    if (this.#exited) throw new FunctionError('container is gone');
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.child.stdin!.write(`${JSON.stringify(event)}\n`);
    });
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }
}

export interface DriverOptions {
  streamArn: string;
  batchSize: number;
  /** Gets the invoker for the next invocation (may start a new container). */
  invoker: (n: number) => Invoker | Promise<Invoker>;
  bisect?: boolean;
  /** Retries of one batch before the mapping gives up (then the test fails). Default 50. */
  maxRetries?: number;
  /** Called before each invocation with its number; may kill the container or start a duplicate. */
  beforeInvoke?: (n: number, event: KinesisStreamEvent, invoker: Invoker) => void | Promise<void>;
}

export interface DriverStats {
  invocations: number;
  functionErrors: number;
  partialFailures: number;
  bisections: number;
}

/** Drives one shard's records through the handler until every record was reported done. */
export async function driveShard(shard: ShardRecords, options: DriverOptions, stats: DriverStats): Promise<void> {
  const maxRetries = options.maxRetries ?? 50;
  const records = shard.records;
  let pos = 0;
  let size = options.batchSize;
  let retries = 0;
  while (pos < records.length) {
    const batch = records.slice(pos, pos + size);
    const event = kinesisEvent(options.streamArn, shard.shardId, batch);
    const n = stats.invocations++;
    const invoker = await options.invoker(n);
    await options.beforeInvoke?.(n, event, invoker);
    let response: KinesisStreamBatchResponse;
    try {
      response = await invoker.invoke(event);
    } catch (error) {
      if (!(error instanceof FunctionError)) throw error;
      stats.functionErrors++;
      if (++retries > maxRetries) throw new Error(`shard ${shard.shardId}: batch at ${pos} failed ${retries} times: ${error.message}`);
      if (options.bisect && batch.length > 1) {
        stats.bisections++;
        size = Math.ceil(batch.length / 2);
      }
      continue;
    }
    const failures = response.batchItemFailures ?? [];
    if (failures.length === 0) {
      pos += batch.length;
      size = options.batchSize;
      retries = 0;
      continue;
    }
    stats.partialFailures++;
    if (++retries > maxRetries) throw new Error(`shard ${shard.shardId}: batch at ${pos} reported failures ${retries} times`);
    const lowest = failures.map((f) => BigInt(f.itemIdentifier)).reduce((a, b) => (a < b ? a : b));
    const at = batch.findIndex((r) => BigInt(r.SequenceNumber!) === lowest);
    if (at < 0) throw new Error(`shard ${shard.shardId}: failure ${lowest} is not in the batch`);
    pos += at;
  }
}
