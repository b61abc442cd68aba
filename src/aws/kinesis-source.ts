/**
 * KinesisSource: reads every shard of a Kinesis data stream with the polling
 * API (ListShards, GetShardIterator, GetRecords) and yields batches per shard.
 *
 * Guarantees:
 * - within a shard, records come in sequence order; batches of different
 *   shards interleave;
 * - a child shard (after a split or merge) is read only after every parent's
 *   last batch was queued, so per-key order survives resharding;
 * - read-ahead is bounded (`maxBufferedBatchesPerShard`): the consumer's pace
 *   governs reading;
 * - errors that can pass (throttling, 5xx, network) are retried with jittered
 *   exponential backoff and counted; an expired iterator is renewed from the
 *   last record read; anything else ends the iteration with that error.
 *
 * Checkpointing is the consumer's job: after fully handling a batch, record
 * `batch.checkpoint` as the position of `batch.shardId`; restart with
 * `start(checkpoint)`. An empty batch is yielded when a shard starts (so its
 * start position reaches the checkpoint) and when it ends.
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type _Record,
  type GetRecordsCommandOutput,
  type GetShardIteratorCommandInput,
  type KinesisClient,
  type ListShardsCommandInput,
  type ListShardsCommandOutput,
  type Shard,
} from '@aws-sdk/client-kinesis';
import {
  SENTINEL_AT_TIMESTAMP,
  SENTINEL_SHARD_END,
  SENTINEL_TRIM_HORIZON,
  type Checkpoint,
  type ShardCheckpoint,
} from '../checkpoint/checkpoint-store.js';
import { deaggregate, isAggregated } from './kpl.js';
import { backoffDelay, classifyError, errorMessage, errorName, sleep, type BackoffOptions, type Logger } from './retry.js';
import { RcfStreamError } from '../util/errors.js';

export type StartPosition = { type: 'LATEST' } | { type: 'TRIM_HORIZON' } | { type: 'AT_TIMESTAMP'; timestamp: Date };

export interface SourceRecord {
  shardId: string;
  /** Sequence number of the Kinesis record (shared by the user records of one KPL aggregate). */
  sequenceNumber: string;
  /** Index of the user record inside a KPL-aggregated record; absent for plain records. */
  subSequence?: number;
  partitionKey: string;
  explicitHashKey?: string;
  data: Uint8Array;
  arrivalTime?: Date;
  /**
   * Set when the record starts with the KPL magic but could not be
   * de-aggregated: the KPL error, so a dead letter can say that instead of
   * "invalid UTF-8". The record is delivered as is (as the KCL does).
   */
  deaggregationError?: string;
}

export interface ShardBatch {
  shardId: string;
  /** In sequence order; may be empty for a shard's first or last batch. */
  records: SourceRecord[];
  millisBehindLatest?: number;
  /** The shard was read to its end; no further batches for it. */
  shardEnded: boolean;
  /** Position to save for `shardId` once every record of this batch is handled. */
  checkpoint: ShardCheckpoint;
  /** For an ended shard: its child shards, when known. */
  childShardIds?: string[];
}

export interface KinesisSourceOptions {
  client: KinesisClient;
  /** Stream name and/or ARN (at least one). */
  streamName?: string;
  streamArn?: string;
  /** Where to start shards that the initial checkpoint does not cover. Default LATEST. */
  startPosition?: StartPosition;
  /** GetRecords `Limit`, 1..10,000. Default 10,000. */
  getRecordsLimit?: number;
  /** Least time between GetRecords calls on one shard; never below 200 ms (Kinesis allows 5 calls/s per shard). */
  minPollIntervalMs?: number;
  /** Wait after an empty response at the tip of a shard. Default 1000 ms. */
  idlePollIntervalMs?: number;
  /** Batches a shard may have queued for the consumer before its reader pauses. Default 2. */
  maxBufferedBatchesPerShard?: number;
  /** Re-list shards this often to notice new ones. Default 60 s; 0 disables. */
  shardSyncIntervalMs?: number;
  /** Backoff for throttling and transient errors. Default base 200 ms, max 10 s. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Give up (end the iteration with the error) after this many consecutive
   * failed attempts of one call. Default Infinity: a long outage only delays.
   */
  maxConsecutiveRetries?: number;
  /** Split KPL-aggregated records into user records. Default true. */
  deaggregate?: boolean;
  /**
   * A LATEST start is remembered as AT_TIMESTAMP(start - margin) until the first
   * record, so a restart or iterator renewal cannot skip records. Margin absorbs
   * clock skew between this host and Kinesis (records that arrived up to this
   * long before the start may be read too). Default 10 s.
   */
  latestSafetyMarginMs?: number;
  logger?: Logger;
  /** Random source for jitter (tests). */
  random?: () => number;
}

export interface KinesisSourceStats {
  shardsReading: number;
  shardsWaiting: number;
  shardsFinished: number;
  /** Shard readers parked right now because their read-ahead buffer is full (backpressure at work). */
  shardsWaitingForSpace: number;
  listShardsCalls: number;
  getShardIteratorCalls: number;
  getRecordsCalls: number;
  /** User records yielded (after de-aggregation). */
  recordsRead: number;
  /** Records as stored in Kinesis (an aggregate counts once). */
  kinesisRecordsRead: number;
  aggregatedRecords: number;
  /** Aggregates whose digest or protobuf was bad; delivered as plain records. */
  deaggregationErrors: number;
  bytesRead: number;
  batchesYielded: number;
  /** Calls answered with a throttling error. */
  throttles: number;
  /** Attempts repeated after any retryable error (throttling included). */
  retries: number;
  /** Total time slept in backoff. */
  backoffMs: number;
  expiredIterators: number;
  millisBehindLatest: Record<string, number>;
}

/** Where GetShardIterator should start. */
type IteratorSpec =
  | { type: 'TRIM_HORIZON' }
  | { type: 'LATEST' }
  | { type: 'AT_TIMESTAMP'; timestamp: Date }
  | { type: 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string }
  /** Resume inside an aggregate: re-read it and drop user records up to `skipThroughSub`. */
  | { type: 'AT_SEQUENCE_NUMBER'; sequenceNumber: string; skipThroughSub: number };

interface ShardState {
  id: string;
  parents: string[];
  status: 'waiting' | 'reading' | 'finished';
  /** Finished without reading (history before a LATEST start). */
  skipped: boolean;
  spec: IteratorSpec;
  /** Batches queued for the consumer and not yet taken. */
  buffered: number;
  emittedFirst: boolean;
  lastSequence?: string;
  childIds: string[];
  spaceWaiter?: () => void;
  /** The last GetRecords found nothing more (empty, and 0 ms behind): read to its current end. */
  atTip?: boolean;
}

const MIN_POLL_MS = 200;
/** Per-shard read throughput limit (2 MiB/s); pacing by it avoids most read throttling. */
const SHARD_READ_BYTES_PER_SEC = 2 * 1024 * 1024;

export class KinesisSourceError extends RcfStreamError {
  override readonly name = 'KinesisSourceError';
  readonly code = 'KINESIS_SOURCE_FAILED';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** The position to save after `record` when checkpointing in the middle of a batch. */
export function recordCheckpoint(record: SourceRecord): ShardCheckpoint {
  const cp: ShardCheckpoint = { sequenceNumber: record.sequenceNumber };
  if (record.subSequence !== undefined) cp.subSequence = record.subSequence;
  return cp;
}

export class KinesisSource {
  private readonly opts: Required<
    Pick<
      KinesisSourceOptions,
      | 'getRecordsLimit'
      | 'minPollIntervalMs'
      | 'idlePollIntervalMs'
      | 'maxBufferedBatchesPerShard'
      | 'shardSyncIntervalMs'
      | 'maxConsecutiveRetries'
      | 'deaggregate'
      | 'latestSafetyMarginMs'
    >
  >;
  private readonly client: KinesisClient;
  private readonly startPosition: StartPosition;
  private readonly backoffOpts: BackoffOptions;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly streamRef: { StreamName?: string; StreamARN?: string };
  private readonly label: string;

  private readonly shards = new Map<string, ShardState>();
  private readonly queue: ShardBatch[] = [];
  private consumerWaiter: (() => void) | undefined;
  private readonly abort = new AbortController();
  private readonly readers = new Set<Promise<void>>();
  private failure: Error | undefined;
  private started = false;
  private stopped = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncInFlight: Promise<void> | undefined;
  private initial: Checkpoint | undefined;
  private discovered = false;
  private readonly counters: Omit<KinesisSourceStats, 'shardsReading' | 'shardsWaiting' | 'shardsFinished' | 'shardsWaitingForSpace' | 'millisBehindLatest'> = {
    listShardsCalls: 0,
    getShardIteratorCalls: 0,
    getRecordsCalls: 0,
    recordsRead: 0,
    kinesisRecordsRead: 0,
    aggregatedRecords: 0,
    deaggregationErrors: 0,
    bytesRead: 0,
    batchesYielded: 0,
    throttles: 0,
    retries: 0,
    backoffMs: 0,
    expiredIterators: 0,
  };
  private readonly behind: Record<string, number> = {};

  constructor(opts: KinesisSourceOptions) {
    if (opts.streamName === undefined && opts.streamArn === undefined) throw new Error('KinesisSource needs streamName or streamArn');
    const limit = opts.getRecordsLimit ?? 10_000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RangeError(`getRecordsLimit must be 1..10000, got ${limit}`);
    this.client = opts.client;
    this.streamRef = {};
    if (opts.streamName !== undefined) this.streamRef.StreamName = opts.streamName;
    if (opts.streamArn !== undefined) this.streamRef.StreamARN = opts.streamArn;
    this.label = opts.streamName ?? opts.streamArn ?? '';
    this.startPosition = opts.startPosition ?? { type: 'LATEST' };
    this.opts = {
      getRecordsLimit: limit,
      minPollIntervalMs: Math.max(MIN_POLL_MS, opts.minPollIntervalMs ?? MIN_POLL_MS),
      idlePollIntervalMs: Math.max(MIN_POLL_MS, opts.idlePollIntervalMs ?? 1000),
      maxBufferedBatchesPerShard: Math.max(1, opts.maxBufferedBatchesPerShard ?? 2),
      shardSyncIntervalMs: opts.shardSyncIntervalMs ?? 60_000,
      maxConsecutiveRetries: opts.maxConsecutiveRetries ?? Number.POSITIVE_INFINITY,
      deaggregate: opts.deaggregate ?? true,
      latestSafetyMarginMs: opts.latestSafetyMarginMs ?? 10_000,
    };
    this.backoffOpts = { baseDelayMs: opts.backoff?.baseDelayMs ?? 200, maxDelayMs: opts.backoff?.maxDelayMs ?? 10_000 };
    this.log = opts.logger ?? {};
    this.random = opts.random ?? Math.random;
  }

  /**
   * Starts reading (once per instance). Shards in `initial` resume after their
   * saved position; ended shards are not read again; other shards start at
   * `startPosition` (children of a read parent at TRIM_HORIZON).
   */
  start(initial?: Checkpoint): AsyncIterable<ShardBatch> {
    if (this.started) throw new Error('KinesisSource.start() may be called once');
    this.started = true;
    this.initial = initial;
    return this.iterate();
  }

  /** Stops reading; the iteration ends (queued batches are dropped: they were not checkpointed). */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.abort.abort();
      if (this.syncTimer) clearInterval(this.syncTimer);
      for (const s of this.shards.values()) s.spaceWaiter?.();
      this.wakeConsumer();
    }
    await Promise.allSettled([...this.readers]);
    await this.syncInFlight?.catch(() => undefined);
  }

  stats(): KinesisSourceStats {
    let reading = 0;
    let waiting = 0;
    let finished = 0;
    let parked = 0;
    for (const s of this.shards.values()) {
      if (s.spaceWaiter !== undefined) parked++;
      if (s.status === 'reading') reading++;
      else if (s.status === 'waiting') waiting++;
      else finished++;
    }
    return { ...this.counters, shardsReading: reading, shardsWaiting: waiting, shardsFinished: finished, shardsWaitingForSpace: parked, millisBehindLatest: { ...this.behind } };
  }

  /**
   * Every shard was read to its current end (its last GetRecords was empty) or to its
   * end for good, none waits for its parents, and every batch read was handed to the
   * consumer. Then, once the consumer delivered what it took, nothing read is pending.
   */
  caughtUp(): boolean {
    if (!this.discovered || this.queue.length > 0) return false;
    for (const s of this.shards.values()) {
      if (s.buffered > 0 || s.status === 'waiting') return false;
      if (s.status === 'reading' && s.atTip !== true) return false;
    }
    return true;
  }

  /**
   * Shard ids that may be dropped from a checkpoint so it does not grow over
   * months of resharding: ended shards whose known children all have their own
   * entry in `shards` (a restart then still knows where each child stands), and
   * ended shards Kinesis no longer lists. Empty until shards were discovered.
   */
  prunableShardIds(shards: Record<string, ShardCheckpoint>): string[] {
    if (!this.discovered) return [];
    const out: string[] = [];
    for (const [id, pos] of Object.entries(shards)) {
      if (!pos.ended) continue;
      const children = new Set(this.shards.get(id)?.childIds ?? []);
      for (const s of this.shards.values()) if (s.parents.includes(id)) children.add(s.id);
      const known = this.shards.has(id);
      if (children.size === 0 ? !known : [...children].every((c) => shards[c] !== undefined)) out.push(id);
    }
    return out;
  }

  // --- iteration ------------------------------------------------------------

  private async *iterate(): AsyncGenerator<ShardBatch, void, undefined> {
    try {
      await this.syncShards(true);
      if (this.opts.shardSyncIntervalMs > 0 && !this.stopped) {
        this.syncTimer = setInterval(() => {
          this.syncShards(false).catch((e: unknown) => this.fail(e));
        }, this.opts.shardSyncIntervalMs);
        this.syncTimer.unref();
      }
      for (;;) {
        while (this.queue.length === 0 && this.failure === undefined && !this.stopped) {
          await new Promise<void>((resolve) => (this.consumerWaiter = resolve));
        }
        if (this.failure !== undefined) throw this.failure;
        if (this.stopped) return;
        const batch = this.queue.shift()!;
        const s = this.shards.get(batch.shardId);
        if (s) {
          s.buffered--;
          s.spaceWaiter?.();
        }
        this.counters.batchesYielded++;
        yield batch;
      }
    } finally {
      await this.stop();
    }
  }

  private wakeConsumer(): void {
    const w = this.consumerWaiter;
    this.consumerWaiter = undefined;
    w?.();
  }

  private push(s: ShardState, batch: ShardBatch): void {
    s.buffered++;
    this.queue.push(batch);
    this.wakeConsumer();
  }

  private fail(err: unknown): void {
    if (this.stopped || this.failure) return;
    this.failure = err instanceof Error ? err : new KinesisSourceError(String(err));
    this.log.error?.('kinesis source failed', { stream: this.label, error: errorMessage(err) });
    this.abort.abort();
    for (const s of this.shards.values()) s.spaceWaiter?.();
    this.wakeConsumer();
  }

  // --- shard discovery and lineage -----------------------------------------

  /** Lists all shards (following NextToken) and adds the unknown ones. Serialized. */
  private syncShards(initialSync: boolean): Promise<void> {
    if (this.syncInFlight) return this.syncInFlight;
    const p = (async () => {
      const listed = await this.listAllShards();
      if (listed === undefined) return;
      this.addShards(listed, initialSync);
      this.discovered = true;
      this.schedule();
    })().finally(() => {
      if (this.syncInFlight === p) this.syncInFlight = undefined;
    });
    this.syncInFlight = p;
    return p;
  }

  private listAllShards(): Promise<Shard[] | undefined> {
    return listShards(this.streamRef, (input) =>
      this.withRetries('ListShards', () => {
        this.counters.listShardsCalls++;
        return this.client.send(new ListShardsCommand(input), { abortSignal: this.abort.signal });
      }),
    );
  }

  private addShards(listed: Shard[], initialSync: boolean): void {
    const resume = this.initial !== undefined;
    // Shard ids grow with creation time, so parents are decided before their children.
    const sorted = [...listed].sort((a, b) => (a.ShardId ?? '').localeCompare(b.ShardId ?? ''));
    for (const shard of sorted) {
      const id = shard.ShardId;
      if (id === undefined || this.shards.has(id)) continue;
      const parents = [shard.ParentShardId, shard.AdjacentParentShardId].filter((p): p is string => p !== undefined && p !== '');
      const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
      const state: ShardState = { id, parents, status: 'waiting', skipped: false, spec: { type: 'TRIM_HORIZON' }, buffered: 0, emittedFirst: false, childIds: [] };
      const saved = this.initial?.shards[id];
      const parentLinked = parents.some((p) => this.initial?.shards[p] !== undefined || (this.shards.has(p) && !this.shards.get(p)!.skipped));
      if (saved !== undefined) {
        if (saved.ended) {
          state.status = 'finished';
        } else {
          state.spec = specFromCheckpoint(saved);
        }
      } else if (!initialSync || parentLinked) {
        // Created during the run, or a child of a shard we read: everything in it is new to us.
        state.spec = this.startPosition.type === 'AT_TIMESTAMP' && !resume ? { ...this.startPosition } : { type: 'TRIM_HORIZON' };
      } else if (closed && (resume || this.startPosition.type === 'LATEST')) {
        // History from before the first start: not wanted.
        state.status = 'finished';
        state.skipped = true;
      } else {
        if (resume && !closed) {
          this.log.warn?.('open shard missing from checkpoint; using the start position', { shardId: id, start: this.startPosition.type });
        }
        state.spec = { ...this.startPosition };
      }
      this.shards.set(id, state);
      this.log.debug?.('shard discovered', { shardId: id, parents, closed, status: state.status, start: state.spec.type });
    }
  }

  /** Adds children reported by GetRecords (ChildShards), so no ListShards is needed. */
  private addChildren(parent: ShardState, children: NonNullable<GetRecordsCommandOutput['ChildShards']>): void {
    for (const c of children) {
      if (c.ShardId === undefined) continue;
      parent.childIds.push(c.ShardId);
      if (this.shards.has(c.ShardId)) continue;
      this.shards.set(c.ShardId, {
        id: c.ShardId,
        parents: (c.ParentShards ?? []).filter((p) => p !== ''),
        status: 'waiting',
        skipped: false,
        spec: { type: 'TRIM_HORIZON' },
        buffered: 0,
        emittedFirst: false,
        childIds: [],
      });
    }
  }

  /** Starts every waiting shard whose known parents are all finished. */
  private schedule(): void {
    if (this.stopped || this.failure) return;
    for (const s of this.shards.values()) {
      if (s.status !== 'waiting') continue;
      const blocked = s.parents.some((p) => {
        const ps = this.shards.get(p);
        return ps !== undefined && ps.status !== 'finished';
      });
      if (blocked) continue;
      s.status = 'reading';
      const reader = this.readShard(s).catch((e: unknown) => this.fail(e));
      this.readers.add(reader);
      void reader.finally(() => this.readers.delete(reader));
    }
  }

  // --- reading one shard ----------------------------------------------------

  private async readShard(s: ShardState): Promise<void> {
    const signal = this.abort.signal;
    let iterator: string | undefined;
    let nextCallAt = 0;
    let failures = 0;
    while (!signal.aborted) {
      if (iterator === undefined) {
        iterator = await this.getIterator(s);
        if (iterator === undefined) return; // stopped
      }
      while (s.buffered >= this.opts.maxBufferedBatchesPerShard && !signal.aborted) {
        await new Promise<void>((resolve) => (s.spaceWaiter = resolve));
        s.spaceWaiter = undefined;
      }
      await sleep(nextCallAt - Date.now(), signal);
      if (signal.aborted) return;
      const callStart = Date.now();
      let res: GetRecordsCommandOutput;
      try {
        this.counters.getRecordsCalls++;
        res = await this.client.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: this.opts.getRecordsLimit, ...(this.streamRef.StreamARN ? { StreamARN: this.streamRef.StreamARN } : {}) }),
          { abortSignal: signal },
        );
        failures = 0;
      } catch (e) {
        if (signal.aborted) return;
        const cls = classifyError(e);
        if (cls === 'expired-iterator') {
          // Iterators live 5 minutes; a slow consumer can outlast one. Renew from the last record read.
          this.counters.expiredIterators++;
          this.log.info?.('shard iterator expired; renewing', { shardId: s.id, from: s.spec.type });
          iterator = undefined;
          nextCallAt = callStart + this.opts.minPollIntervalMs;
          continue;
        }
        if (cls === 'fatal' || failures >= this.opts.maxConsecutiveRetries) {
          throw new KinesisSourceError(`GetRecords on ${this.label}/${s.id} failed: ${errorMessage(e)}`, e);
        }
        if (cls === 'throttle') this.counters.throttles++;
        this.counters.retries++;
        const delay = backoffDelay(failures++, this.backoffOpts, this.random);
        this.counters.backoffMs += delay;
        this.log.debug?.('GetRecords retry', { shardId: s.id, error: errorName(e), delayMs: delay });
        nextCallAt = Date.now() + Math.max(delay, this.opts.minPollIntervalMs - (Date.now() - callStart));
        continue;
      }

      let bytes = 0;
      const records: SourceRecord[] = [];
      for (const r of res.Records ?? []) {
        bytes += (r.Data?.byteLength ?? 0) + (r.PartitionKey?.length ?? 0);
        this.convert(s, r, records);
      }
      this.counters.bytesRead += bytes;
      this.counters.recordsRead += records.length;
      const rawCount = res.Records?.length ?? 0;
      this.counters.kinesisRecordsRead += rawCount;
      if (rawCount > 0) {
        const last = res.Records![rawCount - 1]!.SequenceNumber!;
        s.lastSequence = last;
        s.spec = { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: last };
      }
      if (res.MillisBehindLatest !== undefined) this.behind[s.id] = res.MillisBehindLatest;
      // An empty answer at 0 ms behind is the end for now; MillisBehindLatest alone is not
      // (kinesalite always reports 0, and a full batch may still be followed by more).
      s.atTip = rawCount === 0 && (res.MillisBehindLatest ?? 0) === 0;
      // Stay under 5 calls/s and the 2 MiB/s read limit of a shard.
      nextCallAt = callStart + Math.max(this.opts.minPollIntervalMs, Math.ceil((bytes / SHARD_READ_BYTES_PER_SEC) * 1000));
      if (rawCount === 0 && (res.MillisBehindLatest ?? 0) === 0) nextCallAt = Math.max(nextCallAt, callStart + this.opts.idlePollIntervalMs);

      const ended = res.NextShardIterator === undefined || res.NextShardIterator === null || res.NextShardIterator === '';
      iterator = ended ? undefined : res.NextShardIterator;
      if (ended) {
        await this.finishShard(s, res, records);
        return;
      }
      if (records.length > 0 || !s.emittedFirst || rawCount > 0) {
        s.emittedFirst = true;
        const batch: ShardBatch = { shardId: s.id, records, shardEnded: false, checkpoint: this.positionOf(s) };
        if (res.MillisBehindLatest !== undefined) batch.millisBehindLatest = res.MillisBehindLatest;
        this.push(s, batch);
      }
    }
  }

  private async finishShard(s: ShardState, res: GetRecordsCommandOutput, records: SourceRecord[]): Promise<void> {
    const children = res.ChildShards ?? [];
    if (children.length > 0) {
      this.addChildren(s, children);
    } else {
      // No ChildShards in the response (older servers): find the children by listing.
      // This shard is still 'reading', so the listing cannot start them yet.
      // A second listing covers the case where the first was a periodic one already under way
      // from before the shard closed.
      for (let i = 0; i < 2 && s.childIds.length === 0 && !this.abort.signal.aborted; i++) {
        await this.syncShards(false);
        for (const other of this.shards.values()) if (other.parents.includes(s.id)) s.childIds.push(other.id);
      }
    }
    const batch: ShardBatch = {
      shardId: s.id,
      records,
      shardEnded: true,
      checkpoint: { sequenceNumber: s.lastSequence ?? SENTINEL_SHARD_END, ended: true },
    };
    if (res.MillisBehindLatest !== undefined) batch.millisBehindLatest = res.MillisBehindLatest;
    if (s.childIds.length > 0) batch.childShardIds = [...new Set(s.childIds)];
    // The parent's last batch is queued before any child can start; the queue is FIFO,
    // so every child batch reaches the consumer after it.
    s.status = 'finished';
    s.emittedFirst = true;
    this.push(s, batch);
    delete this.behind[s.id];
    this.log.info?.('shard ended', { shardId: s.id, children: batch.childShardIds ?? [] });
    this.schedule();
  }

  /** Appends the user records of one Kinesis record, honouring a sub-sequence resume point. */
  private convert(s: ShardState, r: _Record, out: SourceRecord[]): void {
    const seq = r.SequenceNumber!;
    const data = r.Data ?? new Uint8Array(0);
    const skipSub = s.spec.type === 'AT_SEQUENCE_NUMBER' && s.spec.sequenceNumber === seq ? s.spec.skipThroughSub : undefined;
    const base = { shardId: s.id, sequenceNumber: seq } as const;
    const arrival = r.ApproximateArrivalTimestamp;
    let deaggregationError: string | undefined;
    if (this.opts.deaggregate && isAggregated(data)) {
      try {
        const users = deaggregate(data);
        this.counters.aggregatedRecords++;
        users.forEach((u, i) => {
          if (skipSub !== undefined && i <= skipSub) return;
          const rec: SourceRecord = { ...base, subSequence: i, partitionKey: u.partitionKey, data: u.data };
          if (u.explicitHashKey !== undefined) rec.explicitHashKey = u.explicitHashKey;
          if (arrival) rec.arrivalTime = arrival;
          out.push(rec);
        });
        return;
      } catch (e) {
        // As the KCL does: a record that only looks aggregated is passed through unchanged.
        this.counters.deaggregationErrors++;
        deaggregationError = errorMessage(e);
        this.log.warn?.('KPL de-aggregation failed; delivering the record as is', { shardId: s.id, sequenceNumber: seq, error: deaggregationError });
      }
    }
    if (skipSub !== undefined) return; // a plain record at the resume point was already handled
    const rec: SourceRecord = { ...base, partitionKey: r.PartitionKey ?? '', data };
    if (deaggregationError !== undefined) rec.deaggregationError = deaggregationError;
    if (arrival) rec.arrivalTime = arrival;
    out.push(rec);
  }

  /** Checkpoint position that resumes exactly after what has been queued for this shard. */
  private positionOf(s: ShardState): ShardCheckpoint {
    const spec = s.spec;
    switch (spec.type) {
      case 'AFTER_SEQUENCE_NUMBER':
        return { sequenceNumber: spec.sequenceNumber };
      case 'AT_SEQUENCE_NUMBER':
        return { sequenceNumber: spec.sequenceNumber, subSequence: spec.skipThroughSub };
      case 'TRIM_HORIZON':
        return { sequenceNumber: SENTINEL_TRIM_HORIZON };
      case 'AT_TIMESTAMP':
        return { sequenceNumber: SENTINEL_AT_TIMESTAMP, timestamp: spec.timestamp.toISOString() };
      case 'LATEST':
        // Unreachable after getIterator() (LATEST becomes AT_TIMESTAMP); kept safe anyway.
        return { sequenceNumber: SENTINEL_AT_TIMESTAMP, timestamp: new Date(Date.now() - this.opts.latestSafetyMarginMs).toISOString() };
    }
  }

  private async getIterator(s: ShardState): Promise<string | undefined> {
    const spec = s.spec;
    const input: GetShardIteratorCommandInput = { ...this.streamRef, ShardId: s.id, ShardIteratorType: spec.type };
    if (spec.type === 'AFTER_SEQUENCE_NUMBER' || spec.type === 'AT_SEQUENCE_NUMBER') input.StartingSequenceNumber = spec.sequenceNumber;
    if (spec.type === 'AT_TIMESTAMP') input.Timestamp = spec.timestamp;
    const requestedAt = Date.now();
    const res = await this.withRetries(`GetShardIterator(${s.id})`, () => {
      this.counters.getShardIteratorCalls++;
      return this.client.send(new GetShardIteratorCommand(input), { abortSignal: this.abort.signal });
    });
    if (res === undefined) return undefined;
    if (spec.type === 'LATEST') {
      // Remember LATEST as a timestamp so a renewal or restart before the first record skips nothing.
      s.spec = { type: 'AT_TIMESTAMP', timestamp: new Date(requestedAt - this.opts.latestSafetyMarginMs) };
    }
    if (!res.ShardIterator) throw new KinesisSourceError(`GetShardIterator on ${this.label}/${s.id} returned no iterator`);
    return res.ShardIterator;
  }

  /** Runs `call` until it succeeds, retrying throttling/transient errors. undefined = stopped. */
  private async withRetries<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
    const signal = this.abort.signal;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) return undefined;
      try {
        return await call();
      } catch (e) {
        if (signal.aborted) return undefined;
        const cls = classifyError(e);
        if (cls === 'fatal' || cls === 'expired-iterator' || attempt >= this.opts.maxConsecutiveRetries) {
          if (errorName(e) === 'ExpiredNextTokenException') throw e;
          throw new KinesisSourceError(`${what} on ${this.label} failed: ${errorMessage(e)}`, e);
        }
        if (cls === 'throttle') this.counters.throttles++;
        this.counters.retries++;
        const delay = backoffDelay(attempt, this.backoffOpts, this.random);
        this.counters.backoffMs += delay;
        this.log.debug?.(`${what} retry`, { error: errorName(e), delayMs: delay });
        await sleep(delay, signal);
      }
    }
  }
}

function specFromCheckpoint(cp: ShardCheckpoint): IteratorSpec {
  switch (cp.sequenceNumber) {
    case SENTINEL_TRIM_HORIZON:
      return { type: 'TRIM_HORIZON' };
    case SENTINEL_AT_TIMESTAMP:
      return { type: 'AT_TIMESTAMP', timestamp: new Date(cp.timestamp ?? 0) };
    case SENTINEL_SHARD_END:
      // Only meaningful with ended: true, handled by the caller; read from the start to be safe.
      return { type: 'TRIM_HORIZON' };
    default:
      if (cp.subSequence !== undefined) return { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: cp.sequenceNumber, skipThroughSub: cp.subSequence };
      return { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: cp.sequenceNumber };
  }
}

/**
 * Every shard of a stream, page by page; a listing that outlived its token starts over.
 * `call` makes one ListShards call (retried as its caller sees fit); undefined: stopped.
 */
async function listShards(
  streamRef: { StreamName?: string; StreamARN?: string },
  call: (input: ListShardsCommandInput) => Promise<ListShardsCommandOutput | undefined>,
): Promise<Shard[] | undefined> {
  const out: Shard[] = [];
  let nextToken: string | undefined;
  for (;;) {
    const input = nextToken !== undefined ? { NextToken: nextToken } : { ...streamRef };
    let res;
    try {
      res = await call(input);
    } catch (e) {
      if (errorName(e) === 'ExpiredNextTokenException') {
        out.length = 0;
        nextToken = undefined;
        continue;
      }
      throw e;
    }
    if (res === undefined) return undefined;
    out.push(...(res.Shards ?? []));
    nextToken = res.NextToken;
    if (nextToken === undefined || nextToken === '') return out;
  }
}

/**
 * Open shards of a stream (no ending sequence number), by one listing without retries; throws
 * on a failed call. For sizing before reading (run's default --workers), not for reading.
 */
export async function countOpenShards(client: KinesisClient, stream: { streamName?: string | undefined; streamArn?: string | undefined }): Promise<number> {
  const ref = stream.streamArn !== undefined ? { StreamARN: stream.streamArn } : stream.streamName !== undefined ? { StreamName: stream.streamName } : {};
  const shards = (await listShards(ref, (input) => client.send(new ListShardsCommand(input))))!;
  return shards.filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined).length;
}
