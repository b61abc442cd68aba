/** Checkpoint stores: positions and model snapshot saved together, atomically. */
export {
  CheckpointConflictError,
  CheckpointCorruptError,
  CheckpointStreamMismatchError,
  bindCheckpointToStream,
  makeCheckpoint,
  sameStream,
  SENTINEL_AT_TIMESTAMP,
  SENTINEL_SHARD_END,
  SENTINEL_TRIM_HORIZON,
  type Checkpoint,
  type CheckpointStore,
  type ShardCheckpoint,
} from './checkpoint-store.js';
export { FileCheckpointStore, type FileCheckpointStoreOptions } from './file-store.js';
export { DynamoDbCheckpointStore, DYNAMODB_MAX_INLINE_MODEL_BYTES, type DynamoDbCheckpointStoreOptions } from './dynamodb-store.js';
export { S3CheckpointStore, type S3CheckpointStoreOptions } from './s3-store.js';
