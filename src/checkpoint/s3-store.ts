/**
 * Checkpoint as one S3 object per application, in the binary envelope of
 * checkpoint-store.ts (positions + raw model bytes + SHA-256). A PUT replaces
 * the whole object atomically, so readers see the old or the new checkpoint,
 * never a mix; size is not limited the way a DynamoDB item is.
 *
 * There is no writer fencing here: run one instance per application name (or
 * use the DynamoDB store, which detects a second writer).
 */
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { inAwsCall } from '../aws/retry.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint, type CheckpointStore } from './checkpoint-store.js';

export interface S3CheckpointStoreOptions {
  client: S3Client;
  bucket: string;
  applicationName: string;
  /** Key prefix; the object is `${prefix}${applicationName}.ckpt`. Default `rcf-stream/checkpoints/`. */
  prefix?: string;
}

export class S3CheckpointStore implements CheckpointStore {
  private readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;

  constructor(opts: S3CheckpointStoreOptions) {
    if (!/^[A-Za-z0-9._-]+$/.test(opts.applicationName)) {
      throw new Error(`applicationName "${opts.applicationName}" must use only letters, digits, '.', '_' and '-'`);
    }
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.key = `${opts.prefix ?? 'rcf-stream/checkpoints/'}${opts.applicationName}.ckpt`;
  }

  private get location(): string {
    return `s3://${this.bucket}/${this.key}`;
  }

  async load(): Promise<Checkpoint | undefined> {
    let bytes: Uint8Array;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key }));
      if (res.Body === undefined) throw new Error(`empty response body for ${this.location}`);
      bytes = await res.Body.transformToByteArray();
    } catch (e) {
      if (e instanceof NoSuchKey || (e as Error).name === 'NoSuchKey') return undefined;
      throw inAwsCall(e, `S3 GetObject ${this.location}`);
    }
    return decodeCheckpoint(bytes, this.location);
  }

  async save(cp: Checkpoint): Promise<void> {
    const body = encodeCheckpoint(cp);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: body,
          ContentType: 'application/octet-stream',
          Metadata: { 'rcf-updated-at': cp.updatedAt },
        }),
      );
    } catch (e) {
      throw inAwsCall(e, `S3 PutObject ${this.location}`);
    }
  }
}
