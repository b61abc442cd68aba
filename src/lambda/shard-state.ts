/**
 * ShardStateStore: one S3 object per shard holding the exact detector
 * snapshot (every key's model) and the last record it learned, in the
 * checkpoint envelope of src/checkpoint (checksummed) around the service's
 * model format (src/service/models.ts, which refuses other settings).
 *
 * Reads are cheap when warm: the container keeps the detector and the ETag it
 * came with, and revalidates with a conditional GET (If-None-Match: 304 costs
 * no body and no decode). Writes are conditional (If-Match the ETag read, or
 * If-None-Match: * for a new shard), so of two invocations that started from
 * the same state only one can save; the other gets StateConflictError and
 * must not report its records as done.
 *
 * A cached detector is lent out by load() and must be either saved or
 * discarded: scoring mutates it, so a batch that did not save leaves it
 * describing records the stored state has not learned.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CheckpointConflictError,
  decodeCheckpoint,
  encodeCheckpoint,
  makeCheckpoint,
  type ShardCheckpoint,
} from '../checkpoint/checkpoint-store.js';
import type { GraderFactory, RecordDetector } from '../detect/detector.js';
import { createRecordDetector } from '../detect/detector-host.js';
import type { ServiceConfig } from '../service/config.js';
import { decodeModels, encodeModels, modelFingerprint } from '../service/models.js';
import type { StateLocation } from './config.js';

/** The shard's stored state changed since it was read: this invocation must not commit. */
export class StateConflictError extends CheckpointConflictError {
  readonly code = 'STATE_CONFLICT';
}

export interface ShardState {
  /** The last record learned; undefined for a shard never saved. */
  position: ShardCheckpoint | undefined;
  detector: RecordDetector;
  /** ETag of the stored object this state came from; undefined when none was stored. */
  etag: string | undefined;
  /** How load() got it: 'new' (nothing stored), 'read' (GET with body), 'cached' (304). */
  source: 'new' | 'read' | 'cached';
  /** Stored object size (bytes), 0 for a new shard. */
  bytes: number;
  /** Time spent decoding the object into models (ms; 0 unless source is 'read'). */
  decodeMs: number;
}

export interface ShardStateStoreOptions {
  client: S3Client;
  location: StateLocation;
  detect: ServiceConfig['detect'];
  grader: GraderFactory;
  /** Shards whose state the container keeps warm; the least recently used is dropped. Default 8. */
  cacheShards?: number;
}

export interface SaveResult {
  etag: string;
  bytes: number;
  /** Time spent encoding the models (ms), the rest of a save is the PUT. */
  encodeMs: number;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export class ShardStateStore {
  readonly #client: S3Client;
  readonly #location: StateLocation;
  readonly #detect: ServiceConfig['detect'];
  readonly #grader: GraderFactory;
  readonly #fingerprint: string;
  readonly #cacheShards: number;
  /** Warm states by object key, least recently used first. */
  readonly #cache = new Map<string, ShardState>();

  constructor(options: ShardStateStoreOptions) {
    this.#client = options.client;
    this.#location = options.location;
    this.#detect = options.detect;
    this.#grader = options.grader;
    this.#fingerprint = modelFingerprint(options.detect);
    this.#cacheShards = Math.max(1, options.cacheShards ?? 8);
  }

  /** Object key of a shard's state. Stream names and shard ids are [A-Za-z0-9_.-]. */
  key(stream: string, shardId: string): string {
    return `${this.#location.prefix}${stream}/${shardId}.state`;
  }

  #where(key: string): string {
    return `s3://${this.#location.bucket}/${key}`;
  }

  /** The shard's stored state (warm copy when still current). The detector is the caller's until save() or discard(). */
  async load(stream: string, shardId: string): Promise<ShardState> {
    const key = this.key(stream, shardId);
    const warm = this.#cache.get(key);
    this.#cache.delete(key);
    let res;
    try {
      res = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#location.bucket, Key: key, ...(warm?.etag !== undefined ? { IfNoneMatch: warm.etag } : {}) }),
      );
    } catch (error) {
      const status = httpStatus(error);
      if (status === 304 && warm !== undefined) return { ...warm, source: 'cached', decodeMs: 0 };
      warm?.detector.dispose();
      if (status === 404 || (error as Error).name === 'NoSuchKey') return { position: undefined, detector: await this.#newDetector(), etag: undefined, source: 'new', bytes: 0, decodeMs: 0 };
      throw error;
    }
    warm?.detector.dispose();
    if (res.Body === undefined) throw new Error(`empty response body for ${this.#where(key)}`);
    const bytes = await res.Body.transformToByteArray();
    const started = performance.now();
    const cp = decodeCheckpoint(bytes, this.#where(key));
    const position = cp.shards[shardId];
    if (position === undefined) throw new Error(`${this.#where(key)} holds no position for ${shardId}`);
    const detector =
      cp.models === undefined ? await this.#newDetector() : await decodeModels(cp.models, { detect: this.#detect, grader: this.#grader });
    return { position, detector, etag: res.ETag, source: 'read', bytes: bytes.byteLength, decodeMs: performance.now() - started };
  }

  /**
   * Saves `state.detector` as having learned everything up to `position`, only
   * if the stored object is still the one `state.etag` names. On success the
   * state stays warm; on any failure it is discarded.
   */
  async save(stream: string, shardId: string, state: ShardState, position: ShardCheckpoint): Promise<SaveResult> {
    const key = this.key(stream, shardId);
    let body: Buffer;
    const started = performance.now();
    try {
      body = encodeCheckpoint(makeCheckpoint({ [shardId]: position }, encodeModels(state.detector, this.#fingerprint)));
    } catch (error) {
      state.detector.dispose();
      throw error;
    }
    const encodeMs = performance.now() - started;
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
      this.#keep(key, { position, detector: state.detector, etag: res.ETag, source: 'cached', bytes: body.byteLength, decodeMs: 0 });
      return { etag: res.ETag, bytes: body.byteLength, encodeMs };
    } catch (error) {
      state.detector.dispose();
      const status = httpStatus(error);
      // 412: another writer saved since our read; 409: a concurrent conditional write is in progress.
      if (status === 412 || status === 409 || (error as Error).name === 'PreconditionFailed') {
        throw new StateConflictError(`${this.#where(key)} changed since it was read (another invocation saved this shard); the batch will be retried from the stored state`);
      }
      throw error;
    }
  }

  /** Gives back a loaded state that did not change (no record learned): it stays warm. */
  release(stream: string, shardId: string, state: ShardState): void {
    if (state.etag === undefined) {
      // Nothing stored yet: a new detector is cheap to rebuild and there is no ETag to revalidate.
      state.detector.dispose();
      return;
    }
    this.#keep(this.key(stream, shardId), { ...state, source: 'cached' });
  }

  /** Gives back a loaded state that will not be saved (its detector learned unsaved records). */
  discard(state: ShardState): void {
    state.detector.dispose();
  }

  /** Drops every warm state. */
  close(): void {
    for (const s of this.#cache.values()) s.detector.dispose();
    this.#cache.clear();
  }

  #keep(key: string, state: ShardState): void {
    this.#cache.set(key, state);
    while (this.#cache.size > this.#cacheShards) {
      const [oldest, s] = this.#cache.entries().next().value as [string, ShardState];
      this.#cache.delete(oldest);
      s.detector.dispose();
    }
  }

  #newDetector(): Promise<RecordDetector> {
    const d = this.#detect;
    return createRecordDetector({
      forest: d.forest,
      threshold: d.threshold,
      attribution: d.explain,
      keyed: d.mapping.keyField !== undefined,
      maxKeys: d.maxKeys,
    });
  }
}
