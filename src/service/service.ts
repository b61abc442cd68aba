/**
 * The streaming service behind `rcf-stream run`: wiring of the pipeline
 * (src/pipeline) over Kinesis:
 *
 *   KinesisSource -> BatchProcessor (decode, parse, score with the shard's models, format)
 *        |             -> sinks: output stream (or stdout), dead-letter file / stream, SNS
 *        +--- positions + model snapshot, once every sink acknowledged ---> checkpoint store
 *
 * Batches are scored in arrival order on this thread, each by the models of its
 * own shard (--model-scope shard, the default), so a record's score depends only
 * on its shard's order. Deliveries run one after another in scoring order while
 * the next batches are scored (a few batches ahead at most).
 *
 * At-least-once: a shard's position moves only when its batch was delivered
 * (output accepted by Kinesis or written to stdout, dead letters written,
 * notifications accepted by SNS or folded into its rate-limit summary). A checkpoint first holds scoring and waits
 * for every scored batch to be delivered, then takes the positions and the
 * model snapshot at the same instant, so they describe exactly the same
 * records: after a restart the models continue as if never stopped, and the
 * records replayed after the checkpoint get the scores they got before.
 *
 * A delivery that fails for good stops the service WITHOUT a further
 * checkpoint (the models already learned records whose output was lost);
 * the restart replays from the last checkpoint.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  createDynamoDbClient,
  createKinesisClient,
  createS3Client,
  createSnsClient,
  describeAwsConfig,
  type AwsConfig,
} from '../aws/clients.js';
import { KinesisSource, countOpenShards, type KinesisSourceStats, type ShardBatch } from '../aws/kinesis-source.js';
import { KinesisSink, type KinesisSinkStats } from '../aws/kinesis-sink.js';
import { SnsNotifier, type SnsNotifierStats } from '../aws/sns-notifier.js';
import { classifyError, errorMessage } from '../aws/retry.js';
import {
  bindCheckpointToStream,
  CheckpointConflictError,
  DynamoDbCheckpointStore,
  FileCheckpointStore,
  S3CheckpointStore,
  makeCheckpoint,
  type Checkpoint,
  type CheckpointStore,
  type ShardCheckpoint,
} from '../checkpoint/index.js';
import { DeadLetterWriter } from '../io/dead-letter.js';
import type { DetectorSpec } from '../detect/detector-spec.js';
import { describeStrategy, graderFactory } from '../detect/strategy.js';
import { OutputSink } from '../io/output.js';
import { BatchProcessor } from '../pipeline/batch-processor.js';
import type { PipelineObserver, PipelineStats, ScoredBatch, Sink } from '../pipeline/contracts.js';
import { safeObserver, shapeOf } from '../pipeline/observers.js';
import { decodeScopedModels, encodeScopedModels, encodeScopedParts, estimateModelBytes, modelFingerprint } from '../pipeline/models.js';
import { ModelWorkerPool } from '../detect/model-workers.js';
import { defaultWorkers } from './worker-count.js';
import { snapshotDetector } from '../detect/detector-snapshot.js';
import { ModelScopeError, ScopedModels } from '../pipeline/scoped-models.js';
import { DeadLetterFileSink, DeadLetterStreamSink, KinesisOutputSink, NotificationSink, StreamOutputSink } from '../pipeline/sinks.js';
import type { CheckpointSpec, ServiceConfig } from './settings.js';
import { createLogger, type ServiceLogger } from './logger.js';
import { RcfStreamError } from '../util/errors.js';
/** Scored batches waiting for delivery before reading pauses. */
const MAX_PENDING_DELIVERIES = 4;
/** Bad records logged one by one; after that, one line per this many. */
const BAD_RECORD_LOG_LIMIT = 20;
const BAD_RECORD_LOG_EVERY = 1000;

/** The pipeline's counters (PipelineStats) with what only the service knows. */
export interface ServiceStats extends PipelineStats {
  recordsPerSecond: number;
  checkpoints: PipelineStats['checkpoints'] & { lastModelBytes: number; restoredModels: boolean };
  source: KinesisSourceStats | undefined;
  sink: KinesisSinkStats | undefined;
  deadLetterSink: KinesisSinkStats | undefined;
  sns: SnsNotifierStats | undefined;
  threshold: string;
  engine: string;
}

export interface ServiceResult {
  exitCode: number;
  /** Why the service stopped: a signal name, 'idle', 'stop', or the error. */
  reason: string;
  stats: ServiceStats;
}

export interface ServiceOptions {
  stdout?: Writable;
  stderr?: Writable;
  /** Merged over config.aws (tests: explicit local credentials, short timeouts). */
  awsOverrides?: Partial<AwsConfig>;
  /** Replaces the store named by config.checkpoint. */
  store?: CheckpointStore;
  /**
   * Told when the models are loaded, about scored batches, dead letters, deliveries and
   * commits, and when the service stops (metrics, health, live page). Its errors are logged
   * once and turn it off; they never reach the service.
   */
  observer?: PipelineObserver;
  /** The machine's cores for the default --workers (tests inject it); default os.availableParallelism(). */
  cores?: number;
}

/** A scored shard batch waiting to be delivered. */
interface Work {
  scored: ScoredBatch;
  checkpoint: ShardCheckpoint;
}

/** A shard batch being scored on a worker thread (--workers N): delivered, in queue order, once scored. */
interface RemoteWork {
  scoring: Promise<Work>;
}

class ServiceFailure extends RcfStreamError {
  override readonly name = 'ServiceFailure';
  readonly code = 'SERVICE_FAILED';
}

export class AnomalyService {
  readonly done: Promise<ServiceResult>;
  readonly #config: ServiceConfig;
  readonly #log: ServiceLogger;
  readonly #started = performance.now();
  readonly #abort = new AbortController();
  readonly #clients: { destroy(): void }[] = [];
  readonly #source: KinesisSource;
  readonly #sink: KinesisSink | undefined;
  readonly #dlqSink: KinesisSink | undefined;
  readonly #notifier: SnsNotifier | undefined;
  readonly #output: KinesisOutputSink | StreamOutputSink;
  readonly #dlqFile: DeadLetterFileSink | undefined;
  readonly #dlqStream: DeadLetterStreamSink | undefined;
  readonly #notifications: NotificationSink | undefined;
  /** Every sink, in delivery order: output first, then dead letters, then notifications. */
  readonly #sinks: Sink[];
  readonly #store: CheckpointStore | undefined;
  /** The store's model size limit and one full model's size: checked before output is written. */
  readonly #modelBudget: { limit: number; perModel: number } | undefined;
  readonly #models: ScopedModels;
  readonly #processor: BatchProcessor;
  /** --workers N: one processor per worker (its buffers serve one batch at a time), and the chain of each. */
  readonly #remote: { processors: BatchProcessor[]; chains: Promise<unknown>[] } | undefined;
  readonly #observer: PipelineObserver | undefined;
  readonly #fingerprint: string;
  readonly #initial: Checkpoint | undefined;

  /** Delivered positions, the ones a checkpoint saves. */
  readonly #positions: Record<string, ShardCheckpoint>;
  #dirty = false;
  #sinceCheckpoint = 0;
  #deliveryTail: Promise<void> = Promise.resolve();
  readonly #pending: Promise<void>[] = [];
  /** A batch taken from the source and not yet handed to delivery. */
  #inHand = 0;
  /** Set while a checkpoint waits for deliveries: scoring holds until it clears. */
  #gate: Promise<void> | undefined;
  #checkpointing: Promise<void> | undefined;
  #stopping = false;
  /** The observer was told the stop began. */
  #toldStopping = false;
  /** Resolves at stop() or a failure: waits on deliveries (which an outage can hold forever) race with it. */
  readonly #stopped: Promise<void>;
  #signalStop!: () => void;
  #stopReason = 'stop';
  /** Fatal: exit 1. */
  #failure: Error | undefined;
  /** Output was lost after its records were learned: no checkpoint may follow. */
  #deliveryFailed = false;
  /** The store refused a save for good (conflict, size, permissions): no further saves. */
  #storeFailed = false;
  /** When the last delivery finished, or a batch with records arrived (for --exit-when-idle). */
  #lastActivity = Date.now();
  #timers: NodeJS.Timeout[] = [];
  readonly #counters = {
    recordsRead: 0,
    recordsScored: 0,
    anomalies: 0,
    outputRecords: 0,
    checkpointsSaved: 0,
    checkpointsFailed: 0,
    lastSavedAt: undefined as string | undefined,
    lastModelBytes: 0,
    restoredModels: false,
  };

  private constructor(parts: {
    config: ServiceConfig;
    log: ServiceLogger;
    stdout: Writable;
    clients: { destroy(): void }[];
    kinesis: KinesisClient;
    sns: SNSClient | undefined;
    store: CheckpointStore | undefined;
    dlqFile: DeadLetterFileSink | undefined;
    models: ScopedModels;
    initial: Checkpoint | undefined;
    observer: PipelineObserver | undefined;
    modelBudget?: { limit: number; perModel: number } | undefined;
  }) {
    const { config } = parts;
    this.#stopped = new Promise<void>((resolve) => (this.#signalStop = resolve));
    this.#config = config;
    this.#log = parts.log;
    this.#clients = parts.clients;
    this.#store = parts.store;
    this.#dlqFile = parts.dlqFile;
    this.#models = parts.models;
    this.#initial = parts.initial;
    this.#observer = parts.observer;
    this.#modelBudget = parts.modelBudget;
    this.#positions = structuredClone(parts.initial?.shards ?? {});
    this.#fingerprint = modelFingerprint(config.detect);
    const log = this.#log;
    const kinesis = parts.kinesis;
    this.#source = new KinesisSource({
      client: kinesis,
      ...config.input,
      startPosition: config.startPosition,
      ...config.source,
      logger: log,
    });
    const signal = this.#abort.signal;
    if (config.output !== undefined) {
      // Retries never give up on throttling or 5xx: an outage only delays; stop() aborts.
      this.#sink = new KinesisSink({ client: kinesis, ...config.output, maxAttempts: Number.POSITIVE_INFINITY, logger: log, signal });
      this.#output = new KinesisOutputSink(this.#sink);
    } else {
      this.#output = new StreamOutputSink(new OutputSink(parts.stdout, false));
    }
    if (config.deadLetterStream !== undefined) {
      this.#dlqSink = new KinesisSink({ client: kinesis, ...config.deadLetterStream, maxAttempts: Number.POSITIVE_INFINITY, logger: log, signal });
      this.#dlqStream = new DeadLetterStreamSink(this.#dlqSink);
    }
    if (parts.sns !== undefined && config.snsTopicArn !== undefined) {
      this.#notifier = new SnsNotifier({
        client: parts.sns,
        topicArn: config.snsTopicArn,
        ratePerWindow: config.sns.ratePerWindow,
        windowMs: config.sns.windowMs,
        maxQueue: config.sns.maxQueue,
        // At least once: an SNS outage delays the pipeline, it does not lose notifications.
        maxAttempts: Number.POSITIVE_INFINITY,
        logger: log,
      });
      this.#notifications = new NotificationSink(this.#notifier);
    }
    this.#sinks = [this.#output, ...(this.#dlqFile ? [this.#dlqFile] : []), ...(this.#dlqStream ? [this.#dlqStream] : []), ...(this.#notifications ? [this.#notifications] : [])];
    const processorOptions = {
      settings: config.detect,
      models: this.#models,
      emit: config.emit,
      partitionKey: config.output !== undefined ? config.outputPartitionKey : undefined,
      notifications: this.#notifications !== undefined ? { subject: config.sns.subject } : undefined,
      observer: parts.observer,
    };
    this.#processor = new BatchProcessor(processorOptions);
    const pool = this.#models.pool;
    if (pool !== undefined) {
      const processors = [this.#processor];
      while (processors.length < pool.workers) processors.push(new BatchProcessor(processorOptions));
      this.#remote = { processors, chains: processors.map(() => Promise.resolve()) };
    }
    this.done = this.#run();
  }

  /** Builds clients, loads the checkpoint and models, and starts reading. Rejects on bad setup. */
  static async start(config: ServiceConfig, options: ServiceOptions = {}): Promise<AnomalyService> {
    const stderr = options.stderr ?? process.stderr;
    const log = createLogger(stderr, config.logLevel, config.statsJson);
    const aws: AwsConfig = { ...config.aws, ...options.awsOverrides };
    if (config.aws.endpoints !== undefined || options.awsOverrides?.endpoints !== undefined) {
      aws.endpoints = { ...config.aws.endpoints, ...options.awsOverrides?.endpoints };
    }
    const clients: { destroy(): void }[] = [];
    let dlqFile: DeadLetterFileSink | undefined;
    let pool: ModelWorkerPool | undefined;
    const cleanup = async (): Promise<void> => {
      for (const c of clients) c.destroy();
      await dlqFile?.close().catch(() => undefined);
    };
    const kinesis = createKinesisClient(aws);
    clients.push(kinesis);
    const sns = config.snsTopicArn !== undefined ? createSnsClient(aws) : undefined;
    if (sns) clients.push(sns);
    let store: CheckpointStore | undefined;
    try {
      const unbound = options.store ?? openStore(config.checkpoint, aws, clients);
      // Positions and models belong to one stream: stamp it on save, refuse another stream's checkpoint on load.
      store = unbound && bindCheckpointToStream(unbound, config.input.streamArn ?? config.input.streamName!, describeCheckpoint(config.checkpoint, options.store !== undefined));
      if (config.deadLetterFile !== undefined) {
        const stream = createWriteStream(config.deadLetterFile, { flags: 'a' });
        await Promise.race([once(stream, 'open'), once(stream, 'error').then(([e]) => Promise.reject(e as Error))]);
        dlqFile = new DeadLetterFileSink(new DeadLetterWriter(stream), stream);
      }
      const scope = config.modelScope ?? 'shard';
      log.info('starting', {
        input: config.input.streamName ?? config.input.streamArn,
        output: config.output?.streamName ?? config.output?.streamArn ?? 'stdout',
        sns: config.snsTopicArn,
        checkpoint: describeCheckpoint(config.checkpoint, options.store !== undefined),
        modelScope: scope,
        aws: describeAwsConfig(aws),
      });
      const initial = await store?.load();
      const grader = await graderFactory(config.detect.threshold);
      const spec: DetectorSpec = {
        forest: config.detect.forest,
        threshold: config.detect.threshold,
        attribution: config.detect.explain,
        keyed: config.detect.mapping.keyField !== undefined,
        maxKeys: config.detect.maxKeys,
      };
      let models: ScopedModels | undefined;
      let restored = false;
      if (initial?.models !== undefined && !config.resetModels) {
        models = await decodeScopedModels(initial.models, { detect: config.detect, grader, scope, spec, source: describeCheckpoint(config.checkpoint, options.store !== undefined) });
        restored = true;
      } else if (initial !== undefined && initial.models === undefined) {
        log.warn('checkpoint holds no models; starting new models at the saved positions');
      }
      models ??= new ScopedModels(scope, spec);
      // The default: one thread per open shard, up to the cores and 8 (src/service/worker-count.ts).
      let workers = config.workers;
      if (workers === undefined) {
        let openShards: number | undefined;
        if (scope === 'shard' && ModelWorkerPool.available) {
          try {
            openShards = await countOpenShards(kinesis, config.input);
          } catch (error) {
            log.warn('could not count the open shards; scoring on this thread', { error: errorMessage(error) });
          }
        }
        workers = defaultWorkers({ scope, openShards, cores: options.cores ?? availableParallelism(), available: ModelWorkerPool.available });
      }
      if (workers > 1) {
        // Each worker owns whole shards' models; restored ones (validated above) are loaded into their workers.
        pool = await ModelWorkerPool.start(spec, workers);
        const parts: [string, Uint8Array][] = [...models.entries()].map(([name, d]) => [name, snapshotDetector(d)]);
        await pool.load(parts);
        models.dispose();
        models = new ScopedModels(scope, spec, undefined, pool);
        log.info('scoring on worker threads', { workers, chosen: config.workers === undefined ? 'default' : 'option' });
      }
      if (initial !== undefined) {
        log.info('resuming from checkpoint', { updatedAt: initial.updatedAt, shards: Object.keys(initial.shards).length, models: restored ? models.size : 'new' });
      }
      // A store with a size limit (DynamoDB) is checked against the models before any output is written.
      const limit = (unbound as { modelByteLimit?: number } | undefined)?.modelByteLimit;
      const modelBudget = limit !== undefined ? { limit, perModel: await estimateModelBytes(config.detect) } : undefined;
      const observer = options.observer && safeObserver(options.observer, (e) => log.warn('the observer failed and is off from now on', { error: errorMessage(e) }));
      const service = new AnomalyService({ config, log, stdout: options.stdout ?? process.stdout, clients, kinesis, sns, store, dlqFile, models, initial, observer, modelBudget });
      service.#counters.restoredModels = restored;
      // Before any batch is scored: #run's first read is still pending.
      observer?.started?.({ stats: service, shape: shapeOf(config.detect) });
      return service;
    } catch (error) {
      await pool?.close().catch(() => undefined);
      await store?.close?.().catch(() => undefined); // e.g. the file store's lock
      await cleanup();
      throw error;
    }
  }

  #badRecords(): number {
    return (this.#remote?.processors ?? [this.#processor]).reduce((n, p) => n + p.badRecords, 0);
  }

  #badByKind(): Record<string, number> {
    if (this.#remote === undefined) return Object.fromEntries(this.#processor.badByKind);
    const out: Record<string, number> = {};
    for (const p of this.#remote.processors) for (const [kind, n] of p.badByKind) out[kind] = (out[kind] ?? 0) + n;
    return out;
  }

  /** Graceful stop: finish the batch in flight, deliver, checkpoint, exit. Idempotent. */
  stop(reason = 'stop'): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#signalStop();
    this.#stopReason = reason;
    this.#log.info('stopping', { reason });
    this.#tellStopping(reason);
    void this.#source.stop();
  }

  stats(): ServiceStats {
    const c = this.#counters;
    const uptime = (performance.now() - this.#started) / 1000;
    const outcomes = this.#notifications?.outcomes ?? { queued: 0, suppressed: 0, dropped: 0 };
    return {
      uptimeSeconds: Math.round(uptime * 1000) / 1000,
      recordsRead: c.recordsRead,
      recordsScored: c.recordsScored,
      recordsPerSecond: uptime > 0 ? Math.round(c.recordsScored / uptime) : 0,
      anomalies: c.anomalies,
      badRecords: this.#badRecords(),
      badRecordsByKind: this.#badByKind(),
      deadLettered: { file: this.#dlqFile?.delivered ?? 0, stream: this.#dlqStream?.delivered ?? 0 },
      outputRecords: c.outputRecords,
      notifications: { queued: outcomes.queued, suppressed: outcomes.suppressed, dropped: this.#notifier?.stats().dropped ?? 0 },
      models: this.#models.size,
      evictions: this.#models.evictions,
      checkpoints: { saved: c.checkpointsSaved, failed: c.checkpointsFailed, lastSavedAt: c.lastSavedAt, lastModelBytes: c.lastModelBytes, restoredModels: c.restoredModels },
      source: this.#source.stats(),
      sink: this.#sink?.stats(),
      deadLetterSink: this.#dlqSink?.stats(),
      sns: this.#notifier?.stats(),
      threshold: describeStrategy(this.#config.detect.threshold),
      engine: this.#config.detect.forest.engine ?? 'wasm',
    };
  }

  // --- main loop ----------------------------------------------------------------

  async #run(): Promise<ServiceResult> {
    this.#startTimers();
    try {
      for await (const batch of this.#source.start(this.#initial)) {
        this.#inHand++;
        try {
          while (this.#gate !== undefined && !this.#stopping) await Promise.race([this.#gate, this.#stopped]);
          // A stop while a checkpoint holds scoring: this batch is not scored (its position is not saved).
          if (this.#stopping && this.#gate !== undefined) break;
          if (this.#failure !== undefined || this.#deliveryFailed) break;
          if (batch.records.length > 0) this.#lastActivity = Date.now();
          await this.#processor.prepare(batch.shardId);
          if (this.#remote !== undefined) {
            // Scored on a worker; delivered in queue order once scored. A checkpoint drains the queue, scoring included.
            if (this.#overModelBudget()) break; // as of the workers' last replies
            this.#enqueue(this.#scoreRemote(batch, this.#remote));
          } else {
            // From scoring to enqueueing without an await: a checkpoint never sees models ahead of the queue.
            let work: Work;
            try {
              work = this.#score(batch);
            } catch (error) {
              // The models may have learned part of the batch: no checkpoint may follow.
              if (!(error instanceof ModelScopeError)) this.#deliveryFailed = true;
              throw error;
            }
            if (this.#overModelBudget()) break; // before this batch's output exists
            this.#enqueue(work);
          }
        } finally {
          this.#inHand--;
        }
        while (this.#pending.length >= MAX_PENDING_DELIVERIES && !this.#stopping) await Promise.race([this.#pending[0], this.#stopped]);
        if (this.#sinceCheckpoint >= this.#config.checkpointRecords) void this.#checkpoint('records');
        if (this.#stopping) break;
      }
    } catch (error) {
      this.#fail(error, error instanceof ModelScopeError ? 'model scope' : this.#deliveryFailed ? 'scoring' : 'input stream');
    }
    await this.#source.stop();
    await this.#finishDeliveries();
    if (this.#checkpointing !== undefined) await this.#checkpointing;
    // A transient store error must not turn a graceful stop into silent replays: retry, then say so.
    // Also after an input failure: what was delivered is consistent with the models.
    for (let attempt = 0; this.#dirty && !this.#deliveryFailed && this.#store !== undefined && !this.#storeFailed; attempt++) {
      if (attempt === 3) {
        this.#fail(new ServiceFailure('the final checkpoint could not be saved; records since the last checkpoint will be read again'), 'checkpoint');
        break;
      }
      if (attempt > 0) await new Promise((r) => setTimeout(r, 500 * attempt));
      await this.#checkpoint('final');
    }
    if (this.#store === undefined) this.#dirty = false;
    await this.#store?.close?.().catch((e: unknown) => this.#log.warn('closing the checkpoint store failed', { error: errorMessage(e) }));
    this.#stopTimers();
    // Every notification was accepted before its position moved; this sends the last rate-limit summary.
    await this.#notifications?.close(Math.min(5_000, this.#config.shutdownTimeoutMs));
    await this.#closeSinks();
    for (const c of this.#clients) c.destroy();
    // Stats first: disposed models hold nothing any more.
    const stats = this.stats();
    this.#models.dispose();
    this.#logStats(stats, true);
    const failure = this.#failure;
    const outcome = { exitCode: failure === undefined ? 0 : 1, reason: failure !== undefined ? errorMessage(failure) : this.#stopReason };
    this.#tellStopping(outcome.reason);
    this.#observer?.stopped?.(outcome);
    return { ...outcome, stats };
  }

  /** True (and the service failing, no further checkpoint) when the models outgrew what the store can save. */
  #overModelBudget(): boolean {
    const budget = this.#modelBudget;
    if (budget === undefined || this.#models.size * budget.perModel <= budget.limit) return false;
    const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
    this.#storeFailed = true;
    this.#fail(
      new ServiceFailure(
        `the models would take about ${mb(this.#models.size * budget.perModel)} at the next checkpoint (${this.#models.size} models of about ` +
          `${Math.round(budget.perModel / 1024)} KB), more than ${describeCheckpoint(this.#config.checkpoint, false)} can keep (${mb(budget.limit)}); ` +
          `stopped before writing their output. Use --checkpoint s3:BUCKET[/PREFIX]/APP, or fewer models (--max-keys)`,
      ),
      'checkpoint',
    );
    return true;
  }

  #fail(error: unknown, where: string): void {
    if (this.#failure === undefined) {
      this.#failure = error instanceof Error ? error : new ServiceFailure(String(error));
      this.#log.error(`${where} failed; stopping`, { error: errorMessage(error) });
    }
    this.#stopping = true;
    this.#tellStopping(errorMessage(this.#failure));
    this.#signalStop();
    void this.#source.stop();
  }

  #tellStopping(reason: string): void {
    if (this.#toldStopping) return;
    this.#toldStopping = true;
    this.#observer?.stopping?.({ reason });
  }

  // --- scoring (synchronous: the models advance only here) ----------------------------

  #score(batch: ShardBatch): Work {
    this.#counters.recordsRead += batch.records.length;
    const before = this.#processor.badRecords;
    const scored = this.#processor.process(batch.shardId, batch.records);
    if (batch.shardEnded) this.#models.ended(batch.shardId);
    this.#account(scored, before, this.#processor.badRecords);
    return { scored, checkpoint: batch.checkpoint };
  }

  /** Counts a scored batch and logs its bad records (`before`..`bad`: the processor's totals). */
  #account(scored: ScoredBatch, before: number, bad: number): void {
    this.#counters.recordsScored += scored.scored;
    this.#counters.anomalies += scored.anomalies;
    for (let n = before + 1; n <= bad; n++) {
      if (n <= BAD_RECORD_LOG_LIMIT || n % BAD_RECORD_LOG_EVERY === 0) {
        const letter = scored.deadLetters[n - before - 1]!.letter;
        // Reasons may quote record content: logged only at debug level; the dead letter has the whole record.
        this.#log.warn('bad record', { recordId: letter.source, kind: letter.kind, total: n });
        this.#log.debug('bad record reason', { recordId: letter.source, reason: letter.reason });
      }
    }
  }

  /** Dispatches the batch to its shard's worker (one batch at a time per worker); the Work once scored. */
  #scoreRemote(batch: ShardBatch, remote: { processors: BatchProcessor[]; chains: Promise<unknown>[] }): RemoteWork {
    this.#counters.recordsRead += batch.records.length;
    const w = this.#models.pool!.workerOf(this.#models.scopeOf(batch.shardId));
    const processor = remote.processors[w]!;
    const scoring = remote.chains[w]!.then(async (): Promise<Work> => {
      const before = processor.badRecords;
      const scored = await processor.processRemote(batch.shardId, batch.records);
      this.#account(scored, before, processor.badRecords);
      return { scored, checkpoint: batch.checkpoint };
    });
    remote.chains[w] = scoring.catch(() => undefined);
    // Scope 'shard': ended() only closes the shard, whatever its worker still has queued.
    if (batch.shardEnded) this.#models.ended(batch.shardId);
    return { scoring };
  }

  // --- delivery (asynchronous, in scoring order) -----------------------------------------

  #enqueue(work: Work | RemoteWork): void {
    const p = this.#deliveryTail.then(async () => {
      if (this.#deliveryFailed) return;
      let scored: Work;
      if ('scoring' in work) {
        try {
          scored = await work.scoring;
        } catch (error) {
          // The models may have learned part of the batch: no checkpoint may follow.
          this.#deliveryFailed = true;
          this.#fail(error, 'scoring');
          return;
        }
      } else scored = work;
      try {
        await this.#deliver(scored);
        this.#lastActivity = Date.now();
        // Also here: the loop may be waiting on an idle stream when deliveries catch up.
        if (this.#sinceCheckpoint >= this.#config.checkpointRecords && !this.#stopping) void this.#checkpoint('records');
      } catch (error) {
        this.#deliveryFailed = true;
        this.#fail(error, 'delivery');
      }
    });
    this.#deliveryTail = p;
    this.#pending.push(p);
    void p.finally(() => {
      const at = this.#pending.indexOf(p);
      if (at >= 0) this.#pending.splice(at, 1);
    });
  }

  async #deliver(work: Work): Promise<void> {
    const { scored } = work;
    for (const sink of this.#sinks) await sink.deliver(scored);
    this.#counters.outputRecords += scored.outputs.length;
    this.#positions[scored.shardId] = work.checkpoint;
    this.#sinceCheckpoint += scored.records;
    this.#dirty = true;
    this.#observer?.delivered?.({ batch: scored });
  }

  async #finishDeliveries(): Promise<void> {
    const timeoutMs = this.#config.shutdownTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.#deliveryTail.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.#deliveryFailed = true;
      this.#fail(new ServiceFailure(`output not accepted within the shutdown timeout (${timeoutMs / 1000} s); the last checkpoint stays, its records will be replayed`), 'shutdown');
      this.#abort.abort();
      await this.#notifications?.close(0);
      await this.#deliveryTail;
    }
  }

  async #closeSinks(): Promise<void> {
    for (const sink of this.#sinks) {
      if (sink === this.#notifications) continue;
      try {
        await sink.close();
      } catch (error) {
        this.#fail(error, sink.name);
      }
    }
  }

  // --- checkpoints --------------------------------------------------------------------

  #checkpoint(reason: string): Promise<void> {
    if (this.#store === undefined) {
      this.#sinceCheckpoint = 0;
      this.#dirty = false;
      return Promise.resolve();
    }
    this.#checkpointing ??= this.#saveCheckpoint(reason).finally(() => {
      this.#checkpointing = undefined;
    });
    return this.#checkpointing;
  }

  async #saveCheckpoint(reason: string): Promise<void> {
    let release!: () => void;
    this.#gate = new Promise<void>((resolve) => (release = resolve));
    let cp: Checkpoint;
    try {
      // Every scored batch must be delivered first, so positions and models cover the same records.
      while (this.#pending.length > 0) await this.#deliveryTail;
      if (this.#deliveryFailed) return;
      for (const id of this.#source.prunableShardIds(this.#positions)) delete this.#positions[id];
      const started = performance.now();
      let models: Uint8Array;
      const pool = this.#models.pool;
      if (pool === undefined) {
        // THE call site of model snapshots: same instant as the positions below.
        models = encodeScopedModels(this.#models, this.#fingerprint);
        cp = makeCheckpoint(this.#positions, models);
        this.#sinceCheckpoint = 0;
        this.#dirty = false;
      } else {
        // Workers: the positions now (every dispatched batch scored and delivered); the snapshot request goes to
        // each worker in this same tick, ahead of any batch dispatched later, so both cover the same records.
        const positions = structuredClone(this.#positions);
        const snapshot = pool.snapshot();
        this.#sinceCheckpoint = 0;
        this.#dirty = false;
        try {
          models = encodeScopedParts(this.#models.scope, await snapshot, this.#fingerprint);
        } catch (error) {
          this.#dirty = true;
          throw error;
        }
        cp = makeCheckpoint(positions, models);
      }
      this.#counters.lastModelBytes = models.byteLength;
      this.#log.debug('checkpoint taken', { reason, modelBytes: models.byteLength, snapshotMs: Math.round(performance.now() - started) });
    } finally {
      this.#gate = undefined;
      release();
    }
    try {
      await this.#store!.save(cp);
      this.#counters.checkpointsSaved++;
      this.#counters.lastSavedAt = cp.updatedAt;
      this.#observer?.committed?.({ shards: cp.shards, modelBytes: cp.models?.byteLength ?? 0 });
    } catch (error) {
      this.#counters.checkpointsFailed++;
      this.#dirty = true;
      if (error instanceof CheckpointConflictError || classifyError(error) === 'fatal') {
        this.#storeFailed = true;
        this.#fail(error, 'checkpoint');
      } else {
        this.#log.warn('checkpoint save failed; will retry', { reason, error: errorMessage(error) });
      }
    }
  }

  // --- timers ----------------------------------------------------------------------------

  #startTimers(): void {
    const cfg = this.#config;
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(cfg.checkpointIntervalMs, () => {
      if (this.#dirty && !this.#stopping) void this.#checkpoint('interval');
    });
    if (cfg.statsIntervalMs > 0) every(cfg.statsIntervalMs, () => this.#logStats(this.stats(), false));
    const idleMs = cfg.exitWhenIdleMs;
    if (idleMs !== undefined) {
      every(Math.max(50, Math.min(500, idleMs / 2)), () => {
        if (!this.#stopping && this.#idle(idleMs)) this.stop('idle');
      });
    }
  }

  /**
   * --exit-when-idle: every shard was read to its current end, every batch read was
   * scored and delivered, and nothing happened for `idleMs` since the last delivery.
   */
  #idle(idleMs: number): boolean {
    if (this.#inHand > 0 || this.#pending.length > 0 || this.#gate !== undefined) return false;
    if (!this.#source.caughtUp()) {
      this.#lastActivity = Date.now();
      return false;
    }
    return Date.now() - this.#lastActivity >= idleMs;
  }

  #stopTimers(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  #logStats(s: ServiceStats, final: boolean): void {
    if (this.#config.statsJson) {
      this.#log.line(JSON.stringify({ time: new Date().toISOString(), type: final ? 'final-stats' : 'stats', ...s }));
      return;
    }
    const behind = Math.max(0, ...Object.values(s.source?.millisBehindLatest ?? {}));
    const parts = [
      `${s.recordsScored} records scored (${s.recordsPerSecond}/s)`,
      `${s.anomalies} anomalies`,
      `${s.badRecords} bad`,
      `${s.outputRecords} output`,
      `SNS ${s.notifications.queued} queued/${s.notifications.suppressed} suppressed/${s.notifications.dropped} dropped`,
      `${s.checkpoints.saved} checkpoints`,
      `${s.source?.throttles ?? 0} read throttles, ${s.sink?.throttles ?? 0} write throttles`,
      `${behind} ms behind`,
    ];
    this.#log.line(`rcf-stream run: ${final ? 'final: ' : ''}${parts.join(', ')}`);
  }
}

function openStore(spec: CheckpointSpec, aws: AwsConfig, clients: { destroy(): void }[]): CheckpointStore | undefined {
  switch (spec.kind) {
    case 'none':
      return undefined;
    case 'file':
      return new FileCheckpointStore({ path: spec.path, lock: true }); // one service per checkpoint file
    case 'dynamodb': {
      const client: DynamoDBClient = createDynamoDbClient(aws);
      clients.push(client);
      return new DynamoDbCheckpointStore({ client, tableName: spec.table, applicationName: spec.app });
    }
    case 's3': {
      const client: S3Client = createS3Client(aws);
      clients.push(client);
      return new S3CheckpointStore({ client, bucket: spec.bucket, applicationName: spec.app, ...(spec.prefix !== undefined ? { prefix: spec.prefix } : {}) });
    }
  }
}

function describeCheckpoint(spec: CheckpointSpec, custom: boolean): string {
  if (custom) return 'custom store';
  switch (spec.kind) {
    case 'none':
      return 'none';
    case 'file':
      return `file:${spec.path}`;
    case 'dynamodb':
      return `dynamodb:${spec.table}/${spec.app}`;
    case 's3':
      return `s3:${spec.bucket}/${spec.prefix ?? ''}${spec.app}`;
  }
}

