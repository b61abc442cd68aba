/**
 * Checkpoints: where each shard was fully handled, saved together with the
 * detector's model snapshot so a restart never pairs positions and models
 * taken at different moments.
 */
import { createHash } from 'node:crypto';
import { RcfStreamError } from '../util/errors.js';

/**
 * Position of one shard.
 *
 * `sequenceNumber` is either a Kinesis sequence number (resume AFTER it) or a
 * sentinel for a shard from which no record was handled yet (the KCL uses the
 * same convention):
 * - `'TRIM_HORIZON'`: resume from the oldest record;
 * - `'AT_TIMESTAMP'`: resume at `timestamp` (a LATEST start is saved like this,
 *   so records that arrive while the service is down are not skipped);
 * - `'SHARD_END'` together with `ended: true`: nothing left in the shard.
 */
export interface ShardCheckpoint {
  sequenceNumber: string;
  /** User record index inside a KPL-aggregated record; resume after this one. */
  subSequence?: number;
  /** The shard was read to its end; its children may be read. */
  ended?: boolean;
  /** ISO-8601, for `sequenceNumber: 'AT_TIMESTAMP'`. */
  timestamp?: string;
}

export const SENTINEL_TRIM_HORIZON = 'TRIM_HORIZON';
export const SENTINEL_AT_TIMESTAMP = 'AT_TIMESTAMP';
export const SENTINEL_SHARD_END = 'SHARD_END';

export interface Checkpoint {
  shards: Record<string, ShardCheckpoint>;
  /** Opaque model snapshot bytes. */
  models?: Uint8Array;
  /** ISO-8601 time the checkpoint was taken. */
  updatedAt: string;
  /**
   * The input stream the positions belong to (ARN or name). Absent in
   * checkpoints written before it was recorded; see bindCheckpointToStream.
   */
  stream?: string;
}

export interface CheckpointStore {
  /** The last saved checkpoint, or undefined if none was ever saved. */
  load(): Promise<Checkpoint | undefined>;
  /** Replaces the checkpoint atomically: a crash leaves either the old or the new one. */
  save(cp: Checkpoint): Promise<void>;
  close?(): Promise<void>;
}

/** The stored checkpoint cannot be read back. Never silently treated as "no checkpoint". */
export class CheckpointCorruptError extends RcfStreamError {
  override readonly name = 'CheckpointCorruptError';
  readonly code = 'CHECKPOINT_CORRUPT';
  constructor(
    readonly location: string,
    detail: string,
  ) {
    super(`Checkpoint at ${location} is corrupt: ${detail}. Fix or remove it deliberately; the service will not start from scratch on its own.`);
  }
}

/** Another writer saved a checkpoint for the same application since this store last loaded/saved. */
export class CheckpointConflictError extends RcfStreamError {
  override readonly name: string = 'CheckpointConflictError';
  /** StateConflictError (Lambda state in S3) narrows this to STATE_CONFLICT. */
  readonly code: string = 'CHECKPOINT_CONFLICT';
  constructor(message: string) {
    super(message);
  }
}

/** The checkpoint belongs to another input stream than the one configured. */
export class CheckpointStreamMismatchError extends RcfStreamError {
  override readonly name = 'CheckpointStreamMismatchError';
  readonly code = 'CHECKPOINT_STREAM_MISMATCH';
  constructor(
    readonly location: string,
    readonly saved: string,
    readonly configured: string,
  ) {
    super(
      `Checkpoint at ${location} belongs to stream ${saved}, not ${configured}: its shard positions and models mean nothing for this stream. ` +
        `Point --checkpoint at this stream's own checkpoint (or a new one); the service will not reuse it.`,
    );
  }
}

/** Name part of a Kinesis stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`), or the text itself. */
export function streamNameOf(stream: string): string {
  const m = /^arn:[^:]+:kinesis:[^:]*:[^:]*:stream\/(.+)$/.exec(stream);
  return m ? m[1]! : stream;
}

/**
 * Whether a saved and a configured stream identity denote the same stream:
 * two ARNs must be equal (same account and region); otherwise the names are
 * compared, so switching between `--input-stream NAME` and its ARN keeps the checkpoint.
 */
export function sameStream(saved: string, configured: string): boolean {
  const arn = (s: string): boolean => s.startsWith('arn:');
  if (arn(saved) && arn(configured)) return saved === configured;
  return streamNameOf(saved) === streamNameOf(configured);
}

/**
 * A store that stamps every checkpoint with `stream` and refuses (throws
 * CheckpointStreamMismatchError from load) one saved for another stream. A
 * checkpoint without a stream (older versions) is accepted and stamped at its
 * next save.
 */
export function bindCheckpointToStream(store: CheckpointStore, stream: string, location = 'the configured store'): CheckpointStore {
  const bound: CheckpointStore = {
    async load() {
      const cp = await store.load();
      if (cp?.stream !== undefined && !sameStream(cp.stream, stream)) throw new CheckpointStreamMismatchError(location, cp.stream, stream);
      return cp;
    },
    save: (cp) => store.save({ ...cp, stream }),
  };
  if (store.close) bound.close = () => store.close!();
  return bound;
}

/** Throws CheckpointCorruptError unless `value` is absent or a non-empty string. */
export function validateStream(value: unknown, location: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new CheckpointCorruptError(location, 'stream is not a non-empty string');
  return value;
}

/** Throws CheckpointCorruptError unless `value` has the shape of `Checkpoint['shards']`. */
export function validateShards(value: unknown, location: string): Record<string, ShardCheckpoint> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CheckpointCorruptError(location, 'shards is not an object');
  }
  const out: Record<string, ShardCheckpoint> = {};
  for (const [shardId, raw] of Object.entries(value as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null) throw new CheckpointCorruptError(location, `shard ${shardId} is not an object`);
    const r = raw as Record<string, unknown>;
    if (typeof r['sequenceNumber'] !== 'string' || r['sequenceNumber'] === '') {
      throw new CheckpointCorruptError(location, `shard ${shardId} has no sequenceNumber`);
    }
    const pos: ShardCheckpoint = { sequenceNumber: r['sequenceNumber'] };
    if (r['subSequence'] !== undefined) {
      if (typeof r['subSequence'] !== 'number' || !Number.isInteger(r['subSequence']) || r['subSequence'] < 0) {
        throw new CheckpointCorruptError(location, `shard ${shardId} has an invalid subSequence`);
      }
      pos.subSequence = r['subSequence'];
    }
    if (r['ended'] !== undefined) {
      if (typeof r['ended'] !== 'boolean') throw new CheckpointCorruptError(location, `shard ${shardId} has an invalid ended flag`);
      pos.ended = r['ended'];
    }
    if (r['timestamp'] !== undefined) {
      if (typeof r['timestamp'] !== 'string' || Number.isNaN(Date.parse(r['timestamp']))) {
        throw new CheckpointCorruptError(location, `shard ${shardId} has an invalid timestamp`);
      }
      pos.timestamp = r['timestamp'];
    }
    if (pos.sequenceNumber === SENTINEL_AT_TIMESTAMP && pos.timestamp === undefined) {
      throw new CheckpointCorruptError(location, `shard ${shardId} is AT_TIMESTAMP without a timestamp`);
    }
    out[shardId] = pos;
  }
  return out;
}

export function validateUpdatedAt(value: unknown, location: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new CheckpointCorruptError(location, 'updatedAt is missing or not a date');
  }
  return value;
}

// ---------------------------------------------------------------------------
// Binary envelope used by the file and S3 stores:
//   MAGIC (8 bytes) | header length (uint32 BE) | header JSON (UTF-8)
//   | model bytes | SHA-256 of everything before it (32 bytes)
// The digest catches truncation and bit rot; the header says how many model
// bytes follow so the models stay raw bytes (no base64 bloat).
// ---------------------------------------------------------------------------

const MAGIC = Buffer.from('RCFCKPT\x01', 'latin1');
const DIGEST_BYTES = 32;
const FORMAT_VERSION = 1;

interface EnvelopeHeader {
  format: number;
  updatedAt: string;
  shards: Record<string, ShardCheckpoint>;
  /** Model byte count, or -1 when the checkpoint has no models (distinct from empty models). */
  modelsLength: number;
  stream?: string;
}

export function encodeCheckpoint(cp: Checkpoint): Buffer {
  const header: EnvelopeHeader = {
    format: FORMAT_VERSION,
    updatedAt: cp.updatedAt,
    shards: cp.shards,
    modelsLength: cp.models ? cp.models.byteLength : -1,
  };
  if (cp.stream !== undefined) header.stream = cp.stream;
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(headerBytes.length);
  const models = cp.models ? Buffer.from(cp.models.buffer, cp.models.byteOffset, cp.models.byteLength) : Buffer.alloc(0);
  const body = Buffer.concat([MAGIC, len, headerBytes, models]);
  const digest = createHash('sha256').update(body).digest();
  return Buffer.concat([body, digest]);
}

export function decodeCheckpoint(bytes: Uint8Array, location: string): Checkpoint {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MAGIC.length + 4 + DIGEST_BYTES) throw new CheckpointCorruptError(location, `only ${buf.length} bytes`);
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new CheckpointCorruptError(location, 'not an rcf-stream checkpoint (bad magic)');
  const body = buf.subarray(0, buf.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(buf.subarray(buf.length - DIGEST_BYTES))) {
    throw new CheckpointCorruptError(location, 'checksum mismatch (truncated or altered)');
  }
  const headerLen = body.readUInt32BE(MAGIC.length);
  const headerStart = MAGIC.length + 4;
  if (headerStart + headerLen > body.length) throw new CheckpointCorruptError(location, 'header length out of range');
  let header: EnvelopeHeader;
  try {
    header = JSON.parse(body.subarray(headerStart, headerStart + headerLen).toString('utf8')) as EnvelopeHeader;
  } catch (e) {
    throw new CheckpointCorruptError(location, `header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null) throw new CheckpointCorruptError(location, 'header is not an object');
  if (header.format !== FORMAT_VERSION) throw new CheckpointCorruptError(location, `unknown format version ${String(header.format)}`);
  const modelsStart = headerStart + headerLen;
  const modelsBytes = body.length - modelsStart;
  const cp: Checkpoint = {
    shards: validateShards(header.shards, location),
    updatedAt: validateUpdatedAt(header.updatedAt, location),
  };
  const stream = validateStream(header.stream, location);
  if (stream !== undefined) cp.stream = stream;
  if (header.modelsLength === -1) {
    if (modelsBytes !== 0) throw new CheckpointCorruptError(location, 'unexpected bytes after header');
  } else {
    if (header.modelsLength !== modelsBytes) {
      throw new CheckpointCorruptError(location, `models length ${String(header.modelsLength)} does not match ${modelsBytes} stored bytes`);
    }
    // Copy so callers own an exact-size buffer that does not pin the whole envelope.
    cp.models = new Uint8Array(body.subarray(modelsStart));
  }
  return cp;
}

/** A checkpoint of (a copy of) `shards` and `models`, stamped `now`. */
export function makeCheckpoint(shards: Record<string, ShardCheckpoint>, models?: Uint8Array, now: Date = new Date()): Checkpoint {
  const cp: Checkpoint = { shards: structuredClone(shards), updatedAt: now.toISOString() };
  if (models !== undefined) cp.models = models;
  return cp;
}
