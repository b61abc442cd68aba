/** The AWS I/O layer: Kinesis in and out, SNS notifications, client factory. */
export { createDynamoDbClient, createKinesisClient, createS3Client, createSnsClient, describeAwsConfig, type AwsConfig, type AwsEndpoints } from './clients.js';
export {
  KinesisSource,
  KinesisSourceError,
  recordCheckpoint,
  type KinesisSourceOptions,
  type KinesisSourceStats,
  type ShardBatch,
  type SourceRecord,
  type StartPosition,
} from './kinesis-source.js';
export { KinesisSink, KinesisSinkError, MAX_RECORD_BYTES, type KinesisSinkOptions, type KinesisSinkStats, type SinkEntry } from './kinesis-sink.js';
export { SnsNotifier, type Notification, type NotifyOutcome, type SnsNotifierOptions, type SnsNotifierStats } from './sns-notifier.js';
export { aggregate, deaggregate, isAggregated, KplFormatError, type UserRecord } from './kpl.js';
export type { Logger, BackoffOptions } from './retry.js';
