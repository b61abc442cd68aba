/**
 * The settings of the streaming service (`rcf-stream run`), as the service
 * takes them. Parsed from flags, RCF_* variables and JSON files by
 * run-config.ts (for `rcf-stream run` and the Lambda handler).
 */
import type { AwsConfig } from '../aws/clients.js';
import type { StartPosition } from '../aws/kinesis-source.js';
import type { DetectionSettings, ModelScope } from '../detect/settings.js';
import type { PartitionKeySpec } from '../pipeline/records.js';
import type { HttpAddress } from '../http/address.js';

export interface StreamRef {
  streamName?: string;
  streamArn?: string;
}

export type CheckpointSpec =
  | { kind: 'file'; path: string }
  | { kind: 'dynamodb'; table: string; app: string }
  | { kind: 's3'; bucket: string; app: string; prefix?: string }
  | { kind: 'none' };

export type { PartitionKeySpec };

export interface ServiceConfig {
  input: StreamRef;
  /** Undefined: output records go to stdout as NDJSON. */
  output: StreamRef | undefined;
  snsTopicArn: string | undefined;
  aws: AwsConfig;
  startPosition: StartPosition;
  checkpoint: CheckpointSpec;
  /** Save a checkpoint after this many records since the last one. */
  checkpointRecords: number;
  /** ... or after this long, whichever comes first. */
  checkpointIntervalMs: number;
  /** Ignore the models stored in the checkpoint (keep its positions). */
  resetModels: boolean;
  emit: 'anomalies' | 'all';
  outputPartitionKey: PartitionKeySpec;
  deadLetterFile: string | undefined;
  deadLetterStream: StreamRef | undefined;
  sns: { subject: string; ratePerWindow: number; windowMs: number; maxQueue: number };
  statsIntervalMs: number;
  statsJson: boolean;
  logLevel: LogLevel;
  /** Stop gracefully once every shard is at its tip and nothing arrived for this long. */
  exitWhenIdleMs: number | undefined;
  /** Longest wait on stop for in-flight output before giving up (exit 1, no checkpoint of it). */
  shutdownTimeoutMs: number;
  source: { minPollIntervalMs?: number; idlePollIntervalMs?: number; getRecordsLimit?: number; shardSyncIntervalMs?: number };
  /** Scoring threads (above 1: model scope 'shard' only); 1: this thread; absent: the service's default (src/service/worker-count.ts). */
  workers?: number;
  /** Which records share a model (default 'shard'). */
  modelScope: ModelScope;
  /** Detection options, exactly as `detect` parses them. */
  detect: DetectionSettings;
  /** Where `run` serves metrics, health and the live page (src/http); undefined: off. The service itself opens no port. */
  http?: HttpAddress | undefined;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

