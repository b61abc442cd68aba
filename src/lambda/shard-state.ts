/**
 * ShardStateStore: one S3 object per shard holding the exact model snapshot
 * (every key's model, in src/pipeline/models.ts's format, which refuses other
 * settings) and the last record it learned, in the checkpoint envelope of
 * src/checkpoint (checksummed).
 *
 * Reads are cheap when warm: the container keeps what it built from the state
 * (the shard's ShardPipeline, type W here) with the ETag it came with, and
 * revalidates with a conditional GET (If-None-Match: 304 costs no body and no
 * decode). Writes are conditional (If-Match the ETag read, or If-None-Match: *
 * for a new shard), so of two invocations that started from the same state
 * only one can save; the other gets StateConflictError and must not report its
 * records as done.
 *
 * A warm value is lent out by load() and must come back through save(),
 * release() or discard(): scoring mutates it, so a batch that did not save
 * leaves it describing records the stored state has not learned.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CheckpointConflictError,
  decodeCheckpoint,
  encodeCheckpoint,
  makeCheckpoint,
  type ShardCheckpoint,
} from '../checkpoint/checkpoint-store.js';
import type { StateLocation } from './config.js';

/** The shard's stored state changed since it was read: this invocation must not commit. */
export class StateConflictError extends CheckpointConflictError {
  override readonly name = 'StateConflictError';
  override readonly code = 'STATE_CONFLICT';
}

/** What a container keeps warm per shard. */
export interface WarmState {
  dispose(): void;
}

export interface ShardState<W extends WarmState = WarmState> {
  /** The last record learned; undefined for a shard never saved. */
  position: ShardCheckpoint | undefined;
  /** The stored models ('read'; undefined when the stored state has none). */
  models: Uint8Array | undefined;
  /** What the container built from this very state ('cached'). */
  warm: W | undefined;
  /** ETag of the stored object this state came from; undefined when none was stored. */
  etag: string | undefined;
  /** How load() got it: 'new' (nothing stored), 'read' (GET with body), 'cached' (304). */
  source: 'new' | 'read' | 'cached';
  /** Stored object size (bytes), 0 for a new shard. */
  bytes: number;
}

export interface ShardStateStoreOptions {
  client: S3Client;
  location: StateLocation;
  /** Shards whose state the container keeps warm; the least recently used is dropped. Default 8. */
  cacheShards?: number;
}

export interface SaveResult {
  etag: string;
  bytes: number;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

interface Kept<W> {
  position: ShardCheckpoint | undefined;
  warm: W;
  etag: string;
  bytes: number;
}

export class ShardStateStore<W extends WarmState = WarmState> {
  readonly #client: S3Client;
  readonly #location: StateLocation;
  readonly #cacheShards: number;
  /** Warm states by object key, least recently used first. */
  readonly #cache = new Map<string, Kept<W>>();

  constructor(options: ShardStateStoreOptions) {
    this.#client = options.client;
    this.#location = options.location;
    this.#cacheShards = Math.max(1, options.cacheShards ?? 8);
  }

  /** Object key of a shard's state. Stream names and shard ids are [A-Za-z0-9_.-]. */
  key(stream: string, shardId: string): string {
    return `${this.#location.prefix}${stream}/${shardId}.state`;
  }

  #where(key: string): string {
    return `s3://${this.#location.bucket}/${key}`;
  }

  /** The shard's stored state (its warm value when still current, which is the caller's until save(), release() or discard()). */
  async load(stream: string, shardId: string): Promise<ShardState<W>> {
    const key = this.key(stream, shardId);
    const kept = this.#cache.get(key);
    this.#cache.delete(key);
    let res;
    try {
      res = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#location.bucket, Key: key, ...(kept !== undefined ? { IfNoneMatch: kept.etag } : {}) }),
      );
    } catch (error) {
      const status = httpStatus(error);
      if (status === 304 && kept !== undefined) return { position: kept.position, models: undefined, warm: kept.warm, etag: kept.etag, source: 'cached', bytes: kept.bytes };
      kept?.warm.dispose();
      if (status === 404 || (error as Error).name === 'NoSuchKey') return { position: undefined, models: undefined, warm: undefined, etag: undefined, source: 'new', bytes: 0 };
      throw error;
    }
    kept?.warm.dispose();
    if (res.Body === undefined) throw new Error(`empty response body for ${this.#where(key)}`);
    const bytes = await res.Body.transformToByteArray();
    const cp = decodeCheckpoint(bytes, this.#where(key));
    const position = cp.shards[shardId];
    if (position === undefined) throw new Error(`${this.#where(key)} holds no position for ${shardId}`);
    return { position, models: cp.models, warm: undefined, etag: res.ETag, source: 'read', bytes: bytes.byteLength };
  }

  /**
   * Saves `models` as having learned everything up to `position`, only if the
   * stored object is still the one `state.etag` names. On success `warm` (what
   * produced the models) stays warm; on any failure it is disposed.
   */
  async save(stream: string, shardId: string, state: Pick<ShardState<W>, 'etag'>, position: ShardCheckpoint, models: Uint8Array, warm?: W): Promise<SaveResult> {
    const key = this.key(stream, shardId);
    let body: Buffer;
    try {
      body = encodeCheckpoint(makeCheckpoint({ [shardId]: position }, models));
    } catch (error) {
      warm?.dispose();
      throw error;
    }
    try {
      const res = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#location.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/octet-stream',
          ...(state.etag !== undefined ? { IfMatch: state.etag } : { IfNoneMatch: '*' }),
        }),
      );
      if (res.ETag === undefined) throw new Error(`no ETag from PutObject ${this.#where(key)}`);
      if (warm !== undefined) this.#keep(key, { position, warm, etag: res.ETag, bytes: body.byteLength });
      return { etag: res.ETag, bytes: body.byteLength };
    } catch (error) {
      warm?.dispose();
      const status = httpStatus(error);
      // 412: another writer saved since our read; 409: a concurrent conditional write is in progress.
      if (status === 412 || status === 409 || (error as Error).name === 'PreconditionFailed') {
        throw new StateConflictError(`${this.#where(key)} changed since it was read (another invocation saved this shard); the batch will be retried from the stored state`);
      }
      throw error;
    }
  }

  /** Gives back the warm value of a loaded state that did not change (no record learned): it stays warm. */
  release(stream: string, shardId: string, state: ShardState<W>, warm: W): void {
    if (state.etag === undefined) {
      // Nothing stored yet: new models are cheap to rebuild and there is no ETag to revalidate.
      warm.dispose();
      return;
    }
    this.#keep(this.key(stream, shardId), { position: state.position, warm, etag: state.etag, bytes: state.bytes });
  }

  /** Gives back a warm value that will not be saved (it learned unsaved records). */
  discard(warm: W | undefined): void {
    warm?.dispose();
  }

  /** Drops every warm state. */
  close(): void {
    for (const s of this.#cache.values()) s.warm.dispose();
    this.#cache.clear();
  }

  #keep(key: string, kept: Kept<W>): void {
    this.#cache.set(key, kept);
    while (this.#cache.size > this.#cacheShards) {
      const [oldest, s] = this.#cache.entries().next().value as [string, Kept<W>];
      this.#cache.delete(oldest);
      s.warm.dispose();
    }
  }
}
