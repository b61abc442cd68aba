/**
 * The streaming service behind `rcf-stream run`:
 *
 *   KinesisSource -> decode + parse -> detector -> output stream (or stdout)
 *        |                |                          + SNS notifications
 *        |                +--> bad records ---> dead-letter file / stream
 *        +--- positions + model snapshot ---> checkpoint store (one write)
 *
 * Batches are scored in arrival order on this thread; their deliveries
 * (output records, dead letters, notifications) run one after another in the
 * same order, while the next batches are scored (a few batches ahead at most).
 *
 * At-least-once: a shard's position moves only when its batch was delivered
 * (output accepted by Kinesis or written to stdout, dead letters written,
 * notifications handed to SNS). A checkpoint first holds scoring and waits
 * for every scored batch to be delivered, then takes the positions and the
 * model snapshot at the same instant, so they describe exactly the same
 * records: after a restart the models continue as if never stopped, and the
 * records replayed after the checkpoint get the scores they got before.
 *
 * A delivery that fails for good stops the service WITHOUT a further
 * checkpoint (the models already learned records whose output was lost);
 * the restart replays from the last checkpoint.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
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
import { KinesisSource, type KinesisSourceStats, type ShardBatch, type SourceRecord } from '../aws/kinesis-source.js';
import { KinesisSink, MAX_RECORD_BYTES, type KinesisSinkStats, type SinkEntry } from '../aws/kinesis-sink.js';
import { SnsNotifier, type Notification, type SnsNotifierStats } from '../aws/sns-notifier.js';
import { classifyError, errorMessage } from '../aws/retry.js';
import {
  CheckpointConflictError,
  DynamoDbCheckpointStore,
  FileCheckpointStore,
  S3CheckpointStore,
  makeCheckpoint,
  type Checkpoint,
  type CheckpointStore,
  type ShardCheckpoint,
} from '../checkpoint/index.js';
import { DeadLetterWriter, type DeadLetter } from '../io/dead-letter.js';
import { createRecordParser, type RecordParser } from '../io/record-parser.js';
import { DetectionBatch, type RecordDetector } from '../detect/detector.js';
import { createRecordDetector } from '../detect/detector-host.js';
import { describeStrategy, graderFactory, isAdaptive } from '../detect/strategy.js';
import { formatNotification, OutputSink } from '../cli/output.js';
import type { CheckpointSpec, ServiceConfig } from './config.js';
import { createLogger, type ServiceLogger } from './logger.js';
import type { PipelineObserver } from '../metrics/observer.js';
import { decodeModels, encodeModels, modelFingerprint } from './models.js';
import { decodeText, explanationAt, outputPartitionKey, outputRecord, recordId, type OutputShape } from './records.js';

/** Records scored per detector call. */
const CHUNK = 2048;
/** Scored batches waiting for delivery before reading pauses. */
const MAX_PENDING_DELIVERIES = 4;
/** Bad records logged one by one; after that, one line per this many. */
const BAD_RECORD_LOG_LIMIT = 20;
const BAD_RECORD_LOG_EVERY = 1000;

export interface ServiceStats {
  uptimeSeconds: number;
  /** Records taken from the input stream (after KPL de-aggregation). */
  recordsRead: number;
  recordsScored: number;
  recordsPerSecond: number;
  anomalies: number;
  badRecords: number;
  badRecordsByKind: Record<string, number>;
  deadLettered: { file: number; stream: number };
  /** Output records accepted by the output stream (or written to stdout). */
  outputRecords: number;
  notifications: { queued: number; suppressed: number; dropped: number };
  models: number;
  evictions: number;
  checkpoints: { saved: number; failed: number; lastSavedAt: string | undefined; lastModelBytes: number; restoredModels: boolean };
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
  /** Told about the run: attached at start, every scored chunk, the outcome (metrics, live page). */
  observer?: PipelineObserver;
}

/** What scoring one shard batch produced, waiting to be delivered. */
interface Work {
  shardId: string;
  checkpoint: ShardCheckpoint;
  records: number;
  outputs: SinkEntry[];
  /** Output lines for stdout when there is no output stream. */
  lines: string;
  deadLetters: { letter: DeadLetter; record: SourceRecord }[];
  notifications: Notification[];
}

class ServiceFailure extends Error {
  override readonly name = 'ServiceFailure';
}

export class AnomalyService {
  readonly done: Promise<ServiceResult>;
  readonly #config: ServiceConfig;
  readonly #log: ServiceLogger;
  readonly #stdout: Writable;
  readonly #started = performance.now();
  readonly #abort = new AbortController();
  readonly #clients: { destroy(): void }[] = [];
  readonly #kinesis: KinesisClient;
  readonly #source: KinesisSource;
  readonly #sink: KinesisSink | undefined;
  readonly #stdoutSink: OutputSink | undefined;
  readonly #dlqSink: KinesisSink | undefined;
  readonly #dlqFile: { writer: DeadLetterWriter; stream: WriteStream } | undefined;
  readonly #notifier: SnsNotifier | undefined;
  readonly #store: CheckpointStore | undefined;
  readonly #detector: RecordDetector;
  readonly #fingerprint: string;
  readonly #parser: RecordParser;
  readonly #shape: OutputShape;
  readonly #initial: Checkpoint | undefined;
  readonly #batch: DetectionBatch;
  readonly #sources: Record<string, unknown>[] = new Array<Record<string, unknown>>(CHUNK);
  readonly #times: unknown[] = new Array<unknown>(CHUNK);
  readonly #records: SourceRecord[] = new Array<SourceRecord>(CHUNK);
  #observer: PipelineObserver | undefined;
  readonly #recordIdAt = (i: number): string => recordId(this.#records[i]!);

  /** Delivered positions, the ones a checkpoint saves. */
  readonly #positions: Record<string, ShardCheckpoint>;
  #dirty = false;
  #sinceCheckpoint = 0;
  #deliveryTail: Promise<void> = Promise.resolve();
  readonly #pending: Promise<void>[] = [];
  /** Set while a checkpoint waits for deliveries: scoring holds until it clears. */
  #gate: Promise<void> | undefined;
  #checkpointing: Promise<void> | undefined;
  #stopping = false;
  #stopReason = 'stop';
  /** Fatal: exit 1. */
  #failure: Error | undefined;
  /** Output was lost after its records were learned: no checkpoint may follow. */
  #deliveryFailed = false;
  /** The store refused a save for good (conflict, size, permissions): no further saves. */
  #storeFailed = false;
  #lastActivity = Date.now();
  #timers: NodeJS.Timeout[] = [];
  readonly #counters = {
    recordsRead: 0,
    recordsScored: 0,
    anomalies: 0,
    badRecords: 0,
    deadLetteredFile: 0,
    deadLetteredStream: 0,
    outputRecords: 0,
    queued: 0,
    suppressed: 0,
    dropped: 0,
    checkpointsSaved: 0,
    checkpointsFailed: 0,
    lastSavedAt: undefined as string | undefined,
    lastModelBytes: 0,
    restoredModels: false,
  };
  readonly #badByKind = new Map<string, number>();

  private constructor(parts: {
    config: ServiceConfig;
    log: ServiceLogger;
    stdout: Writable;
    clients: { destroy(): void }[];
    kinesis: KinesisClient;
    sns: SNSClient | undefined;
    store: CheckpointStore | undefined;
    dlqFile: { writer: DeadLetterWriter; stream: WriteStream } | undefined;
    detector: RecordDetector;
    initial: Checkpoint | undefined;
  }) {
    const { config } = parts;
    this.#config = config;
    this.#log = parts.log;
    this.#stdout = parts.stdout;
    this.#clients = parts.clients;
    this.#kinesis = parts.kinesis;
    this.#store = parts.store;
    this.#dlqFile = parts.dlqFile;
    this.#detector = parts.detector;
    this.#initial = parts.initial;
    this.#positions = structuredClone(parts.initial?.shards ?? {});
    this.#fingerprint = modelFingerprint(config.detect);
    const d = config.detect;
    this.#parser = createRecordParser('ndjson', d.mapping);
    const b = d.mapping.fields.length;
    const k = d.forest.shingleSize ?? 1;
    this.#batch = new DetectionBatch(CHUNK, b, d.explain ? b * k : 0);
    this.#shape = {
      outputFields: d.outputFields,
      adaptive: isAdaptive(d.threshold),
      explainFields: d.explain ? d.mapping.fields : undefined,
      shingleSize: k,
    };
    const log = this.#log;
    this.#source = new KinesisSource({
      client: this.#kinesis,
      ...config.input,
      startPosition: config.startPosition,
      ...config.source,
      logger: log,
    });
    const signal = this.#abort.signal;
    if (config.output !== undefined) {
      // Retries never give up on throttling or 5xx: an outage only delays; stop() aborts.
      this.#sink = new KinesisSink({ client: this.#kinesis, ...config.output, maxAttempts: Number.POSITIVE_INFINITY, logger: log, signal });
    } else {
      this.#stdoutSink = new OutputSink(this.#stdout, false);
    }
    if (config.deadLetterStream !== undefined) {
      this.#dlqSink = new KinesisSink({ client: this.#kinesis, ...config.deadLetterStream, maxAttempts: Number.POSITIVE_INFINITY, logger: log, signal });
    }
    if (parts.sns !== undefined && config.snsTopicArn !== undefined) {
      this.#notifier = new SnsNotifier({
        client: parts.sns,
        topicArn: config.snsTopicArn,
        ratePerWindow: config.sns.ratePerWindow,
        windowMs: config.sns.windowMs,
        maxQueue: config.sns.maxQueue,
        logger: log,
      });
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
    const cleanup = async (dlq?: DeadLetterWriter): Promise<void> => {
      for (const c of clients) c.destroy();
      await dlq?.close().catch(() => undefined);
    };
    const kinesis = createKinesisClient(aws);
    clients.push(kinesis);
    const sns = config.snsTopicArn !== undefined ? createSnsClient(aws) : undefined;
    if (sns) clients.push(sns);
    let dlqFile: { writer: DeadLetterWriter; stream: WriteStream } | undefined;
    try {
      const store = options.store ?? openStore(config.checkpoint, aws, clients);
      if (config.deadLetterFile !== undefined) {
        const stream = createWriteStream(config.deadLetterFile, { flags: 'a' });
        await Promise.race([once(stream, 'open'), once(stream, 'error').then(([e]) => Promise.reject(e as Error))]);
        dlqFile = { writer: new DeadLetterWriter(stream), stream };
      }
      log.info('starting', {
        input: config.input.streamName ?? config.input.streamArn,
        output: config.output?.streamName ?? config.output?.streamArn ?? 'stdout',
        sns: config.snsTopicArn,
        checkpoint: describeCheckpoint(config.checkpoint, options.store !== undefined),
        aws: describeAwsConfig(aws),
      });
      const initial = await store?.load();
      const grader = await graderFactory(config.detect.threshold);
      let detector: RecordDetector | undefined;
      let restored = false;
      if (initial?.models !== undefined && !config.resetModels) {
        detector = await decodeModels(initial.models, { detect: config.detect, grader });
        restored = true;
      } else if (initial !== undefined && initial.models === undefined) {
        log.warn('checkpoint holds no models; starting new models at the saved positions');
      }
      detector ??= await createRecordDetector({
        forest: config.detect.forest,
        threshold: config.detect.threshold,
        attribution: config.detect.explain,
        keyed: config.detect.mapping.keyField !== undefined,
        maxKeys: config.detect.maxKeys,
      });
      if (initial !== undefined) {
        log.info('resuming from checkpoint', { updatedAt: initial.updatedAt, shards: Object.keys(initial.shards).length, models: restored ? detector.size : 'new' });
      }
      const service = new AnomalyService({ config, log, stdout: options.stdout ?? process.stdout, clients, kinesis, sns, store, dlqFile, detector, initial });
      service.#counters.restoredModels = restored;
      service.#observer = options.observer;
      const d = config.detect;
      options.observer?.attach(service, { fields: d.mapping.fields, keyed: d.mapping.keyField !== undefined, shingleSize: d.forest.shingleSize ?? 1 });
      return service;
    } catch (error) {
      await cleanup(dlqFile?.writer);
      throw error;
    }
  }

  /** Graceful stop: finish the batch in flight, deliver, checkpoint, exit. Idempotent. */
  stop(reason = 'stop'): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopReason = reason;
    this.#log.info('stopping', { reason });
    void this.#source.stop();
  }

  stats(): ServiceStats {
    const c = this.#counters;
    const uptime = (performance.now() - this.#started) / 1000;
    return {
      uptimeSeconds: Math.round(uptime * 1000) / 1000,
      recordsRead: c.recordsRead,
      recordsScored: c.recordsScored,
      recordsPerSecond: uptime > 0 ? Math.round(c.recordsScored / uptime) : 0,
      anomalies: c.anomalies,
      badRecords: c.badRecords,
      badRecordsByKind: Object.fromEntries(this.#badByKind),
      deadLettered: { file: c.deadLetteredFile, stream: c.deadLetteredStream },
      outputRecords: c.outputRecords,
      notifications: { queued: c.queued, suppressed: c.suppressed, dropped: c.dropped },
      models: this.#detector.size,
      evictions: this.#detector.evictions,
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
        if (this.#gate !== undefined) await this.#gate;
        if (this.#failure !== undefined || this.#deliveryFailed) break;
        if (batch.records.length > 0) this.#lastActivity = Date.now();
        this.#enqueue(this.#score(batch));
        while (this.#pending.length >= MAX_PENDING_DELIVERIES) await this.#pending[0];
        if (this.#sinceCheckpoint >= this.#config.checkpointRecords) void this.#checkpoint('records');
        if (this.#stopping) break;
      }
    } catch (error) {
      this.#fail(error, 'input stream');
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
    this.#stopTimers();
    await this.#notifier?.close(Math.min(5_000, this.#config.shutdownTimeoutMs));
    await this.#closeDeadLetters();
    await this.#stdoutSink?.finish();
    for (const c of this.#clients) c.destroy();
    // Stats first: a disposed keyed detector holds no models any more.
    const stats = this.stats();
    this.#detector.dispose();
    this.#logStats(stats, true);
    const failure = this.#failure;
    const outcome = { exitCode: failure === undefined ? 0 : 1, reason: failure !== undefined ? errorMessage(failure) : this.#stopReason };
    this.#observer?.stopped(outcome);
    return { ...outcome, stats };
  }

  #fail(error: unknown, where: string): void {
    if (this.#failure === undefined) {
      this.#failure = error instanceof Error ? error : new ServiceFailure(String(error));
      this.#log.error(`${where} failed; stopping`, { error: errorMessage(error) });
    }
    this.#stopping = true;
    void this.#source.stop();
  }

  // --- scoring (synchronous: the models advance only here) ----------------------------

  #score(batch: ShardBatch): Work {
    const work: Work = {
      shardId: batch.shardId,
      checkpoint: batch.checkpoint,
      records: batch.records.length,
      outputs: [],
      lines: '',
      deadLetters: [],
      notifications: [],
    };
    const records = batch.records;
    this.#counters.recordsRead += records.length;
    let i = 0;
    while (i < records.length) {
      i = this.#scoreChunk(records, i, work);
    }
    return work;
  }

  /** Parses records from `from` into the detection batch until it is full, scores them; returns where it stopped. */
  #scoreChunk(records: SourceRecord[], from: number, work: Work): number {
    const batch = this.#batch;
    const b = batch.dimensions;
    const keyed = this.#config.detect.mapping.keyField !== undefined;
    batch.count = 0;
    let i = from;
    for (; i < records.length && batch.count < CHUNK; i++) {
      const r = records[i]!;
      const text = decodeText(r.data);
      if (text === undefined) {
        this.#bad(work, r, 'invalid UTF-8', 'invalid UTF-8', r.data);
        continue;
      }
      const slot = batch.count;
      const parsed = this.#parser.parse(text, batch.values, slot * b);
      if (!parsed.ok) {
        this.#bad(work, r, parsed.reason, parsed.kind, text);
        continue;
      }
      this.#sources[slot] = parsed.source;
      this.#times[slot] = parsed.time;
      this.#records[slot] = r;
      if (keyed) batch.keys[slot] = parsed.key!;
      batch.count = slot + 1;
    }
    const n = batch.count;
    if (n === 0) return i;
    const t0 = performance.now();
    this.#detector.run(batch);
    this.#counters.recordsScored += n;
    this.#observer?.scored({ ...batch, count: n, dimensions: b, keys: keyed ? batch.keys : undefined, recordId: this.#recordIdAt, latencyMs: performance.now() - t0 });
    const emitAll = this.#config.emit === 'all';
    const timeField = this.#config.detect.mapping.timeField;
    for (let s = 0; s < n; s++) {
      const anomaly = batch.anomaly[s] === 1;
      if (anomaly) this.#counters.anomalies++;
      if (!anomaly && !emitAll) continue;
      const r = this.#records[s]!;
      const source = this.#sources[s]!;
      const id = recordId(r);
      const score = batch.score[s]!;
      const key = keyed ? batch.keys[s] : undefined;
      const out = outputRecord(this.#shape, source, {
        score,
        anomaly,
        grade: batch.grade[s]!,
        threshold: batch.threshold[s]!,
        explanation: this.#shape.explainFields !== undefined ? explanationAt(this.#shape, batch.high!, batch.low!, s) : undefined,
        recordId: id,
      });
      const json = JSON.stringify(out);
      if (this.#sink !== undefined) {
        const entry: SinkEntry = { data: Buffer.from(json, 'utf8'), partitionKey: outputPartitionKey(this.#config.outputPartitionKey, id, key, r, source) };
        if (entry.data.byteLength + Buffer.byteLength(entry.partitionKey, 'utf8') > MAX_RECORD_BYTES) {
          this.#bad(work, r, `output record is ${entry.data.byteLength} bytes; Kinesis takes at most ${MAX_RECORD_BYTES}`, 'output too large', decodeText(r.data) ?? r.data);
        } else work.outputs.push(entry);
      } else {
        work.lines += `${json}\n`;
      }
      if (anomaly && this.#notifier !== undefined) {
        const time = timeField !== undefined ? this.#times[s] : (r.arrivalTime?.toISOString() ?? id);
        const attributes: Record<string, string | number> = { Score: score, AnomalyId: id };
        if (key !== undefined && key !== '') attributes['Key'] = key;
        work.notifications.push({
          message: formatNotification(time, batch.values, s * b, b, score),
          subject: this.#config.sns.subject,
          attributes,
          score,
        });
      }
    }
    return i;
  }

  #bad(work: Work, r: SourceRecord, reason: string, kind: string, input: string | Uint8Array): void {
    const c = this.#counters;
    c.badRecords++;
    this.#badByKind.set(kind, (this.#badByKind.get(kind) ?? 0) + 1);
    const id = recordId(r);
    if (c.badRecords <= BAD_RECORD_LOG_LIMIT || c.badRecords % BAD_RECORD_LOG_EVERY === 0) {
      this.#log.warn('bad record', { recordId: id, reason, total: c.badRecords });
    }
    work.deadLetters.push({ letter: { line: 0, reason, kind, input, source: id }, record: r });
  }

  // --- delivery (asynchronous, in scoring order) -----------------------------------------

  #enqueue(work: Work): void {
    const p = this.#deliveryTail.then(async () => {
      if (this.#deliveryFailed) return;
      try {
        await this.#deliver(work);
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
    if (work.outputs.length > 0) {
      await this.#sink!.put(work.outputs);
      this.#counters.outputRecords += work.outputs.length;
    }
    if (work.lines.length > 0 && this.#stdoutSink !== undefined) {
      this.#stdoutSink.write(work.lines);
      if (this.#stdoutSink.needsDrain) await this.#stdoutSink.drain();
      if (this.#stdoutSink.error !== undefined) throw this.#stdoutSink.error;
      this.#counters.outputRecords += countLines(work.lines);
    }
    if (work.deadLetters.length > 0) await this.#deliverDeadLetters(work);
    for (const n of work.notifications) {
      const outcome = this.#notifier!.notify(n);
      if (outcome === 'queued') this.#counters.queued++;
      else if (outcome === 'suppressed') this.#counters.suppressed++;
      else this.#counters.dropped++;
    }
    this.#positions[work.shardId] = work.checkpoint;
    this.#sinceCheckpoint += work.records;
    this.#dirty = true;
  }

  async #deliverDeadLetters(work: Work): Promise<void> {
    const file = this.#dlqFile;
    if (file !== undefined) {
      for (const { letter } of work.deadLetters) file.writer.write(letter);
      // The position may advance only once the entries reached the file.
      await new Promise<void>((resolve, reject) => file.stream.write('', (e) => (e ? reject(e) : resolve())));
      this.#counters.deadLetteredFile += work.deadLetters.length;
    }
    if (this.#dlqSink !== undefined) {
      const entries = work.deadLetters.map(({ letter, record }) => deadLetterEntry(letter, record));
      await this.#dlqSink.put(entries);
      this.#counters.deadLetteredStream += entries.length;
    }
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
      await this.#deliveryTail;
    }
  }

  async #closeDeadLetters(): Promise<void> {
    try {
      await this.#dlqFile?.writer.close();
    } catch (error) {
      this.#fail(error, 'dead-letter file');
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
      // THE call site of model snapshots: same instant as the positions below.
      const models = encodeModels(this.#detector, this.#fingerprint);
      cp = makeCheckpoint(this.#positions, models);
      this.#counters.lastModelBytes = models.byteLength;
      this.#log.debug('checkpoint taken', { reason, modelBytes: models.byteLength, snapshotMs: Math.round(performance.now() - started) });
      this.#sinceCheckpoint = 0;
      this.#dirty = false;
    } finally {
      this.#gate = undefined;
      release();
    }
    try {
      await this.#store!.save(cp);
      this.#counters.checkpointsSaved++;
      this.#counters.lastSavedAt = cp.updatedAt;
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
        if (this.#stopping || Date.now() - this.#lastActivity < idleMs || this.#pending.length > 0) return;
        const s = this.#source.stats();
        const behind = Object.values(s.millisBehindLatest);
        if (s.shardsWaiting === 0 && behind.length >= s.shardsReading && behind.every((ms) => ms === 0)) this.stop('idle');
      });
    }
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

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** A dead letter on the dead-letter stream: the reason and the original record, under its own partition key. */
function deadLetterEntry(letter: DeadLetter, r: SourceRecord): SinkEntry {
  const body: Record<string, unknown> = { recordId: letter.source, reason: letter.reason, kind: letter.kind, partitionKey: r.partitionKey };
  if (r.arrivalTime !== undefined) body['arrivalTime'] = r.arrivalTime.toISOString();
  if (typeof letter.input === 'string') body['input'] = letter.input;
  else body['inputBase64'] = Buffer.from(r.data).toString('base64');
  let data = Buffer.from(JSON.stringify(body), 'utf8');
  if (data.byteLength > MAX_RECORD_BYTES - 512) {
    // The original was up to 1 MiB already; keep the reason and a locator rather than fail.
    delete body['input'];
    delete body['inputBase64'];
    body['truncated'] = true;
    data = Buffer.from(JSON.stringify(body), 'utf8');
  }
  return { data, partitionKey: r.partitionKey !== '' ? r.partitionKey : (letter.source ?? 'dead-letter') };
}

function openStore(spec: CheckpointSpec, aws: AwsConfig, clients: { destroy(): void }[]): CheckpointStore | undefined {
  switch (spec.kind) {
    case 'none':
      return undefined;
    case 'file':
      return new FileCheckpointStore(spec.path);
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

