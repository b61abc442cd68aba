/**
 * One shard's batch in a Lambda invocation: the per-shard S3 state around the
 * shared pipeline's ShardPipeline (src/pipeline), which does all the record
 * work (decode, parse, score, format, dead letters, notifications) and the
 * deliveries through the pipeline's sinks:
 *
 *   load state (S3, warm) -> ShardPipeline (kept warm, or built from the stored models)
 *     -> processBatch, DELIVERY_RECORDS records at a time, through this invocation's sinks
 *        (output stream or stdout, dead-letter stream or stderr, SNS; each acknowledged)
 *     -> conditional save of snapshot() + last position (one PUT)
 *
 * Guarantees, per shard:
 * - Scores: records are learned in sequence order, once, by the models stored
 *   for the shard, so they get exactly the scores `rcf-stream detect` gives the
 *   same records in order, whatever the batch boundaries and retries.
 * - Delivery is at least once: the position moves past a record only after its
 *   output, dead letter and notification were accepted. When step k fails, the
 *   steps before it are committed (models rebuilt from the stored state re-learn
 *   exactly those records, a deterministic replay) and the batch reports a
 *   failure from the first record of step k.
 * - Nothing is learned twice: a save that finds the stored state changed
 *   (another invocation on the same shard) fails with StateConflictError; the
 *   retry starts from the stored state and skips what it covers.
 */
import type { Writable } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SNSClient } from '@aws-sdk/client-sns';
import { KinesisSink } from '../aws/kinesis-sink.js';
import { SnsNotifier } from '../aws/sns-notifier.js';
import { errorMessage } from '../aws/retry.js';
import { DeadLetterWriter } from '../io/dead-letter.js';
import { OutputSink } from '../io/output.js';
import type { PipelineRecord, ScoredBatch, Sink } from '../pipeline/contracts.js';
import { comparePositions, ShardPipeline, type ShardPosition } from '../pipeline/shard-pipeline.js';
import { DeadLetterFileSink, DeadLetterStreamSink, KinesisOutputSink, NotificationSink, StreamOutputSink } from '../pipeline/sinks.js';
import type { ServiceConfig } from '../service/settings.js';
import type { ServiceLogger } from '../service/logger.js';
import { StateConflictError, type ShardState, type ShardStateStore } from './shard-state.js';

/** Records per delivery step: the granularity of a partial commit. */
export const DELIVERY_RECORDS = 500;

export interface ShardBatchRequest {
  /** Stream name (part of the state's object key). */
  stream: string;
  shardId: string;
  /** The shard's records in sequence order (KPL aggregates already split, with subSequence). */
  records: PipelineRecord[];
  /** Deliveries give up (and the batch reports a failure) after this (epoch ms); default: never. */
  deadline?: number;
}

export interface ShardBatchStats {
  records: number;
  /** At or below the stored position: learned by an earlier invocation. */
  skipped: number;
  scored: number;
  anomalies: number;
  deadLetters: number;
  outputs: number;
  notifications: number;
  /** Records delivered and committed by this invocation. */
  committed: number;
  state: { source: ShardState['source'] | 'none'; readBytes: number; writtenBytes: number };
  /**
   * Wall time per step. `decode` (models from the stored bytes) is inside `load`, `encode`
   * (snapshot) inside `save`: the rest of those two is S3. `score` is processing minus the
   * sinks' time (`deliver`).
   */
  ms: { load: number; decode: number; score: number; deliver: number; save: number; encode: number; total: number };
}

export interface ShardBatchResult {
  /** Kinesis sequence number to retry from (first record not committed); undefined when all were. */
  failedAt: string | undefined;
  /** Why the batch stopped early. */
  reason: string | undefined;
  stats: ShardBatchStats;
}

export interface ShardBatchDeps {
  config: ServiceConfig;
  store: ShardStateStore<ShardPipeline>;
  kinesis: KinesisClient;
  sns: SNSClient | undefined;
  /** Output lines when there is no output stream. */
  stdout: Writable;
  /** Dead letters when there is no dead-letter stream. */
  stderr: Writable;
  log: ServiceLogger;
  /** Clock for the stats (tests, bench). */
  now?: () => number;
}

/** The sinks of one invocation (its deadline, its notification rate window), each timed. */
interface InvocationSinks {
  sinks: Sink[];
  notifications: NotificationSink | undefined;
  /** Time spent in deliver() so far. */
  ms(): number;
  close(): Promise<void>;
}

export class ShardBatchProcessor {
  readonly #deps: ShardBatchDeps;
  readonly #config: ServiceConfig;
  readonly #now: () => number;
  /** One batch at a time per shard, even if the runtime were to overlap invocations. */
  readonly #locks = new Map<string, Promise<unknown>>();
  /** The log-stream sinks, per container: they listen on stdout/stderr, which outlive invocations. */
  readonly #stdoutSink: StreamOutputSink | undefined;
  readonly #stderrSink: DeadLetterFileSink | undefined;

  constructor(deps: ShardBatchDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.#now = deps.now ?? (() => performance.now());
    if (deps.config.output === undefined) this.#stdoutSink = new StreamOutputSink(new OutputSink(deps.stdout, false));
    // No dead-letter stream: the function's log is the dead-letter destination.
    if (deps.config.deadLetterStream === undefined) this.#stderrSink = new DeadLetterFileSink(new DeadLetterWriter(deps.stderr, { endOnClose: false }), deps.stderr);
  }

  process(req: ShardBatchRequest): Promise<ShardBatchResult> {
    const key = `${req.stream}/${req.shardId}`;
    const before = this.#locks.get(key) ?? Promise.resolve();
    const run = before.then(
      () => this.#process(req),
      () => this.#process(req),
    );
    this.#locks.set(key, run);
    void run
      .finally(() => {
        if (this.#locks.get(key) === run) this.#locks.delete(key);
      })
      .catch(() => undefined);
    return run;
  }

  /** The shard's pipeline for `state`: its warm one, or one built from the stored models. */
  #pipeline(shardId: string, state: ShardState<ShardPipeline>): Promise<ShardPipeline> {
    if (state.warm !== undefined) return Promise.resolve(state.warm);
    const cfg = this.#config;
    return ShardPipeline.create({
      settings: cfg.detect,
      shardId,
      sinks: [],
      state: state.models !== undefined ? { models: state.models, last: state.position } : undefined,
      emit: cfg.emit,
      partitionKey: cfg.output !== undefined ? cfg.outputPartitionKey : undefined,
      notifications: cfg.snsTopicArn !== undefined && this.#deps.sns !== undefined ? { subject: cfg.sns.subject } : undefined,
    });
  }

  async #process(req: ShardBatchRequest): Promise<ShardBatchResult> {
    const { store } = this.#deps;
    const t0 = this.#now();
    const stats: ShardBatchStats = {
      records: req.records.length,
      skipped: 0,
      scored: 0,
      anomalies: 0,
      deadLetters: 0,
      outputs: 0,
      notifications: 0,
      committed: 0,
      state: { source: 'none', readBytes: 0, writtenBytes: 0 },
      ms: { load: 0, decode: 0, score: 0, deliver: 0, save: 0, encode: 0, total: 0 },
    };
    const finish = (failedAt: string | undefined, reason: string | undefined): ShardBatchResult => {
      stats.ms.total = this.#now() - t0;
      return { failedAt, reason, stats };
    };
    if (req.records.length === 0) return finish(undefined, undefined);

    const state = await store.load(req.stream, req.shardId);
    stats.state.source = state.source;
    stats.state.readBytes = state.source === 'read' ? state.bytes : 0;
    const td = this.#now();
    // Stored models of other settings (ModelMismatchError) or damaged ones throw: the invocation fails.
    const pipeline = await this.#pipeline(req.shardId, state);
    const t1 = this.#now();
    if (state.source === 'read') stats.ms.decode = t1 - td;
    stats.ms.load = t1 - t0;
    // A stored state without models (never the case for states this handler wrote) starts new models from its position.
    const position = state.position;
    const pending = position === undefined ? req.records : req.records.filter((r) => comparePositions(r, position) > 0);
    stats.skipped = req.records.length - pending.length;
    if (pending.length === 0) {
      store.release(req.stream, req.shardId, state, pipeline);
      return finish(undefined, undefined);
    }

    const sinks = this.#sinks(req, pending.length);
    let delivered = 0;
    let failure: unknown;
    try {
      for (let a = 0; a < pending.length; a += DELIVERY_RECORDS) {
        const end = Math.min(pending.length, a + DELIVERY_RECORDS);
        const r = await pipeline.processBatch(pending.slice(a, end), { sinks: sinks.sinks });
        this.#count(stats, r.scored);
        delivered = end;
      }
    } catch (error) {
      failure = error;
    } finally {
      // The summary of suppressed notifications (over RCF_SNS_RATE in this batch) goes out last.
      await sinks.close();
    }
    stats.notifications = sinks.notifications?.notifier.stats().published ?? 0;
    const t2 = this.#now();
    stats.ms.deliver = sinks.ms();
    stats.ms.score = t2 - t1 - stats.ms.deliver;

    if (failure === undefined) {
      try {
        const models = pipeline.snapshot();
        stats.ms.encode = this.#now() - t2;
        stats.state.writtenBytes = (await store.save(req.stream, req.shardId, state, pipeline.last!, models, pipeline)).bytes;
      } catch (error) {
        return finish(pending[0]!.sequenceNumber, this.#saveFailure(error, req));
      } finally {
        stats.ms.save = this.#now() - t2;
      }
      stats.committed = pending.length;
      return finish(undefined, undefined);
    }

    // Step k failed: this pipeline learned records that were not delivered. Commit the delivered steps.
    store.discard(pipeline);
    const reason = `delivery failed: ${errorMessage(failure)}`;
    this.#deps.log.warn('delivery failed; committing what was delivered', { shard: req.shardId, delivered, of: pending.length, error: errorMessage(failure) });
    if (delivered > 0) {
      try {
        const prefix = await this.#replay(req, state, pending.slice(0, delivered));
        if (prefix === undefined) return finish(pending[0]!.sequenceNumber, `${reason}; the stored state changed meanwhile, nothing committed`);
        stats.state.writtenBytes = prefix.bytes;
        stats.committed = delivered;
      } catch (error) {
        return finish(pending[0]!.sequenceNumber, `${reason}; ${this.#saveFailure(error, req)}`);
      } finally {
        stats.ms.save = this.#now() - t2;
      }
    }
    return finish(pending[delivered]!.sequenceNumber, reason);
  }

  /** Saves the stored models advanced by `records` (already delivered), unless the stored state changed since `read`. */
  async #replay(req: ShardBatchRequest, read: ShardState<ShardPipeline>, records: PipelineRecord[]): Promise<{ bytes: number } | undefined> {
    const { store } = this.#deps;
    const again = await store.load(req.stream, req.shardId);
    if (again.etag !== read.etag) {
      store.discard(again.warm);
      return undefined;
    }
    const pipeline = await this.#pipeline(req.shardId, again);
    try {
      // No sinks: these records were delivered; only the models learn them again, exactly as before.
      await pipeline.processBatch(records, { sinks: [] });
    } catch (error) {
      store.discard(pipeline);
      throw error;
    }
    const last: ShardPosition = pipeline.last!;
    return store.save(req.stream, req.shardId, again, last, pipeline.snapshot(), pipeline);
  }

  #count(stats: ShardBatchStats, b: ScoredBatch): void {
    stats.scored += b.scored;
    stats.anomalies += b.anomalies;
    stats.deadLetters += b.deadLetters.length;
    stats.outputs += b.outputs.length;
  }

  #sinks(req: ShardBatchRequest, records: number): InvocationSinks {
    const cfg = this.#config;
    const { kinesis, sns, log } = this.#deps;
    const remaining = req.deadline === undefined ? undefined : Math.max(1, req.deadline - Date.now());
    const signal = remaining === undefined ? undefined : AbortSignal.timeout(remaining);
    const withSignal = signal !== undefined ? { signal } : {};
    // Kinesis sinks per invocation: they carry its deadline.
    const sinks: Sink[] = [
      cfg.output !== undefined ? new KinesisOutputSink(new KinesisSink({ client: kinesis, ...cfg.output, logger: log, ...withSignal })) : this.#stdoutSink!,
      cfg.deadLetterStream !== undefined
        ? new DeadLetterStreamSink(new KinesisSink({ client: kinesis, ...cfg.deadLetterStream, logger: log, ...withSignal }))
        : this.#stderrSink!,
    ];
    let notifications: NotificationSink | undefined;
    if (sns !== undefined && cfg.snsTopicArn !== undefined) {
      const notifier = new SnsNotifier({ client: sns, topicArn: cfg.snsTopicArn, ratePerWindow: cfg.sns.ratePerWindow, windowMs: cfg.sns.windowMs, maxQueue: records + 1, logger: log });
      notifications = new NotificationSink(notifier);
      sinks.push(notifications);
    }
    let ms = 0;
    const now = this.#now;
    const timed = sinks.map(
      (s): Sink => ({
        name: s.name,
        deliver: async (batch) => {
          const t = now();
          try {
            await s.deliver(batch);
          } finally {
            ms += now() - t;
          }
        },
        close: () => s.close(),
      }),
    );
    const flushMs = Math.min(remaining ?? 10_000, 10_000);
    return {
      sinks: timed,
      notifications,
      ms: () => ms,
      // Only the notifier holds anything of this invocation (its queue, its summary); the log sinks stay open.
      close: async () => notifications?.close(flushMs),
    };
  }

  #saveFailure(error: unknown, req: ShardBatchRequest): string {
    const conflict = error instanceof StateConflictError;
    this.#deps.log.warn(conflict ? 'state conflict; batch will be retried' : 'state save failed; batch will be retried', { shard: req.shardId, error: errorMessage(error) });
    return `${conflict ? 'state conflict' : 'state save failed'}: ${errorMessage(error)}`;
  }
}
