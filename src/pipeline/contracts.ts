/**
 * The pipeline's contracts. Data flows one way:
 *
 *   Source --batches of one partition--> BatchProcessor (decode, parse, score, format)
 *          --ScoredBatch--> every Sink, in order, each acknowledging its delivery
 *          --> the partition's position is committed (with the models) once all acknowledged
 *
 * A partition is a Kinesis shard (or, for a file, the whole input): the unit whose
 * order decides the scores. Positions and models are committed together through a
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

/** Told what the pipeline does; must not throw and must not keep the batch's arrays. */
export interface PipelineObserver {
  /** A chunk of one partition's records was scored; `batch` holds values, keys and results for its `count` records. */
  batchScored?(event: { shardId: string; batch: DetectionBatch; anomalies: number }): void;
  /** A record was set aside. */
  deadLettered?(event: { shardId: string; kind: string; reason: string; recordId: string }): void;
  /** A scored batch was accepted by every sink. */
  delivered?(event: { batch: ScoredBatch }): void;
  /** Positions (and models) were committed. */
  committed?(event: { shards: Record<string, ShardCheckpoint>; modelBytes: number }): void;
}
