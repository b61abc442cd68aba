/**
 * The pipeline's contracts. Data flows one way:
 *
 *   Source --batches of one partition--> BatchProcessor (decode, parse, score, format)
 *          --ScoredBatch--> every Sink, in order, each acknowledging its delivery
 *          --> the partition's position is committed (with the models) once all acknowledged
 *
 * A partition is a Kinesis shard (or, for a file or stdin, the whole input: LineSource):
 * the unit whose order decides the scores. Positions and models are committed together through a
 * CheckpointStore (src/checkpoint), so a restart resumes both at the same record.
 */
import type { DeadLetter } from '../io/dead-letter.js';
import type { DetectionBatch } from '../detect/detector.js';
import type { ShardCheckpoint } from '../checkpoint/checkpoint-store.js';

/** One input record: a Kinesis record, a Lambda event record, ... (SourceRecord has this shape). */
export interface PipelineRecord {
  /** The partition (shard) the record belongs to. */
  shardId: string;
  sequenceNumber: string;
  /** User record index inside a KPL aggregate. */
  subSequence?: number;
  partitionKey: string;
  data: Uint8Array;
  arrivalTime?: Date;
  /** Why a KPL aggregate could not be split (its raw bytes are delivered as one record). */
  deaggregationError?: string;
  /** `data` already decoded (a line source's text lines); `data` is then not read. */
  text?: string;
  /** Line number in a line input (file, stdin): the record's locator in dead letters and notifications. */
  line?: number;
  /** The source could not read the record (a line over the size limit): set aside with this reason. */
  rejected?: { reason: string; kind: string };
}

/** What a Source yields: records of ONE partition, in order, and the position after them. */
export interface SourceBatch {
  shardId: string;
  records: PipelineRecord[];
  /** Position to commit once every record of the batch was delivered. */
  checkpoint: ShardCheckpoint;
  /** The partition was read to its end. */
  shardEnded: boolean;
}

/** Where batches come from (KinesisSource implements it; a Lambda event is one batch). */
export interface Source {
  /** Batches from the positions of `initial` (or the configured start) until stop(). */
  start(initial?: { shards: Record<string, ShardCheckpoint> }): AsyncIterable<SourceBatch>;
  stop(): Promise<void>;
  /** Every partition was read to its current end and every batch read was handed over. */
  caughtUp?(): boolean;
}

/** One output record, serialised. */
export interface OutputItem {
  data: Buffer;
  /** Output partition key (Kinesis); '' when the sink has none. */
  partitionKey: string;
  recordId: string;
}

export interface DeadLetterItem {
  letter: DeadLetter;
  record: PipelineRecord;
  /** The record was scored (its model learned it), then set aside because its output could not be made. */
  scored?: { anomaly: boolean };
}

/** An anomaly's notification (SnsNotifier's Notification has this shape). */
export interface PipelineNotification {
  message: string;
  subject?: string;
  attributes?: Record<string, string | number>;
  score?: number;
}

/** What processing one partition's batch produced, to be delivered. */
export interface ScoredBatch {
  shardId: string;
  /** Input records of the batch (scored or dead-lettered). */
  records: number;
  scored: number;
  anomalies: number;
  outputs: OutputItem[];
  /**
   * With BatchProcessor `output: 'lines'` (files, stdout) the output records as NDJSON lines in
   * one buffer, and how many; `outputs` is then empty.
   */
  lines?: { data: Uint8Array; count: number };
  deadLetters: DeadLetterItem[];
  notifications: PipelineNotification[];
}

/**
 * A destination. deliver() resolves once the destination has accepted (durably, as far
 * as it can tell) everything of the batch meant for it; it rejects when it cannot, which
 * stops the pipeline without committing the batch's position.
 */
export interface Sink {
  readonly name: string;
  deliver(batch: ScoredBatch): Promise<void>;
  /** Flushes and releases; pending deliveries already resolved. */
  close(): Promise<void>;
}

/**
 * The pipeline's counters at one moment (the service's ServiceStats has this shape). The
 * metrics registry and the live page read them at scrape time, so what they show equals
 * the pipeline's own stats at that moment; nothing is counted twice.
 */
export interface PipelineStats {
  uptimeSeconds: number;
  /** Records taken from the source (after KPL de-aggregation). */
  recordsRead: number;
  recordsScored: number;
  anomalies: number;
  badRecords: number;
  badRecordsByKind: Record<string, number>;
  deadLettered: { file: number; stream: number };
  outputRecords: number;
  /** Notifications handed over: queued for SNS, summarised (over the rate), dropped (queue full). */
  notifications: { queued: number; suppressed: number; dropped: number };
  models: number;
  evictions: number;
  checkpoints: { saved: number; failed: number; lastSavedAt: string | undefined };
  source?: { shardsReading: number; shardsWaiting: number; shardsFinished: number; millisBehindLatest: Record<string, number> } | undefined;
  sns?: { published: number; suppressed: number; dropped: number; failed: number; summariesQueued: number } | undefined;
}

/** What the records look like (labels, explanations). */
export interface PipelineShape {
  /** Value field names, in order. */
  fields: readonly string[];
  keyed: boolean;
  shingleSize: number;
}

export interface PipelineOutcome {
  exitCode: number;
  reason: string;
}

/** One detector call over a chunk of one partition's records. */
export interface BatchScoredEvent {
  shardId: string;
  /** Values, keys (keyed pipelines), score, threshold, anomaly and attribution of its `count` records. */
  batch: DetectionBatch;
  anomalies: number;
  /** Wall time of the detector call, in milliseconds. */
  latencyMs: number;
  /** The stable id (shardId:sequenceNumber[:subSequence]) of record i of the batch. */
  recordId(i: number): string;
}

/**
 * Told what the pipeline does (metrics, health, live page). Every call is optional,
 * synchronous and must be cheap; it must not throw (wrap it in safeObserver, src/pipeline/observers.ts)
 * and must not keep the batch's arrays, which are reused after the call. In order:
 * started once (models loaded, reading begins), then batchScored / deadLettered /
 * delivered / committed as they happen, stopping once a stop begins (signal, idle,
 * failure), stopped once at the end.
 */
export interface PipelineObserver {
  /** Models are loaded; `stats` answers for the pipeline's counters from now on (also after the stop). */
  started?(event: { stats: { stats(): PipelineStats }; shape: PipelineShape }): void;
  /** A chunk of one partition's records was scored. */
  batchScored?(event: BatchScoredEvent): void;
  /** A record was set aside. */
  deadLettered?(event: { shardId: string; kind: string; reason: string; recordId: string }): void;
  /** A scored batch was accepted by every sink. */
  delivered?(event: { batch: ScoredBatch }): void;
  /** Positions (and models) were committed. */
  committed?(event: { shards: Record<string, ShardCheckpoint>; modelBytes: number }): void;
  /** The pipeline began to stop (not ready any more). */
  stopping?(event: { reason: string }): void;
  /** The pipeline has stopped. */
  stopped?(event: PipelineOutcome): void;
}
