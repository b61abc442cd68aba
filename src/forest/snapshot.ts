import { BinaryFormatError, ByteReader, ByteWriter, crc32 } from '../util/binary.js';
import { MODEL_STATE_VERSION, validateModelState } from './model-state.js';
import { LIMITS, type EngineName, type ForestConfig } from './options.js';
import { RcfStreamError } from '../util/errors.js';

/**
 * Forest snapshot: a self-describing, versioned binary image of a forest's complete state,
 * restorable by either engine with bit-identical continuation.
 *
 *   "RCFS" | format u16 | engine u8 | 0 u8 | binary id (8 bytes; zeros for the TS engine)
 *   config: T u16 | S u16 | b u8 | k u8 | timeDecay f64 | outputAfter f64 | seed hi i32, lo i32
 *   body length u32 | body | CRC-32 u32 of everything before it
 *
 * The body is the engine-neutral model state (model-state.ts) packed tightly: raw f32 bits
 * for values, LEB128 for counts and indexes, one bit per node for its kind.
 */
export const SNAPSHOT_MAGIC = 0x53464352; // "RCFS" read as little-endian u32
export const SNAPSHOT_FORMAT = 1;

export class SnapshotError extends RcfStreamError {
  override name = 'SnapshotError';
  readonly code = 'SNAPSHOT_INVALID';
}

export interface SnapshotInfo {
  format: number;
  engine: EngineName;
  binaryId: string;
  config: ForestConfig;
}

const ENGINE_CODES: Record<EngineName, number> = { wasm: 1, ts: 2 };

export function encodeSnapshot(config: ForestConfig, words: Int32Array, engine: EngineName, binaryId: string): Uint8Array {
  const w = new ByteWriter();
  w.u32(SNAPSHOT_MAGIC);
  w.u16(SNAPSHOT_FORMAT);
  w.u8(ENGINE_CODES[engine]);
  w.u8(0);
  const id = (binaryId || '').padEnd(16, '0').slice(0, 16);
  for (let i = 0; i < 8; i++) w.u8(parseInt(id.slice(2 * i, 2 * i + 2), 16) || 0);
  w.u16(config.numberOfTrees);
  w.u16(config.sampleSize);
  w.u8(config.baseDimensions);
  w.u8(config.shingleSize);
  w.f64(config.timeDecay);
  w.f64(config.outputAfter);
  w.i32(config.seedHi);
  w.i32(config.seedLo);
  const lengthAt = w.length;
  w.u32(0);
  const bodyStart = w.length;
  packBody(w, config, words);
  w.setU32(lengthAt, w.length - bodyStart);
  const bytes = w.finish();
  const out = new Uint8Array(bytes.length + 4);
  out.set(bytes);
  new DataView(out.buffer).setUint32(bytes.length, crc32(bytes), true);
  return out;
}

function packBody(w: ByteWriter, config: ForestConfig, words: Int32Array): void {
  const D = config.dimensions;
  let p = 0;
  w.varint(words[p++]!); // model state version
  w.i32(words[p++]!);
  w.i32(words[p++]!);
  for (let i = 0; i < D; i++) w.i32(words[p++]!);
  const P = words[p++]!;
  w.varint(P);
  for (let i = 0; i < P * D; i++) w.i32(words[p++]!);
  for (let t = 0; t < config.numberOfTrees; t++) {
    for (let i = 0; i < 4; i++) w.i32(words[p++]!);
    const size = words[p++]!;
    w.varint(size);
    for (let i = 0; i < size; i++) w.i32(words[p++]!);
    for (let i = 0; i < size; i++) w.varint(words[p++]!);
    const count = words[p++]!;
    w.varint(count);
    // Node kinds as a bitmap, then each node's payload.
    const kinds = new Uint8Array((count + 7) >> 3);
    let q = p;
    for (let i = 0; i < count; i++) {
      if (words[q] === 1) {
        kinds[i >> 3]! |= 1 << (i & 7);
        q += 2;
      } else q += 3;
    }
    w.raw(kinds);
    for (let i = 0; i < count; i++) {
      if (words[p] === 1) {
        w.varint(words[p + 1]!);
        p += 2;
      } else {
        if (D > 1) w.varint(words[p + 1]!);
        w.i32(words[p + 2]!);
        p += 3;
      }
    }
  }
}

function unpackBody(r: ByteReader, config: ForestConfig): Int32Array {
  const D = config.dimensions;
  const out: number[] = [];
  const version = r.varint();
  if (version !== MODEL_STATE_VERSION) throw new SnapshotError(`unsupported model state version ${version}`);
  out.push(version, r.i32(), r.i32());
  for (let i = 0; i < D; i++) out.push(r.i32());
  const P = r.varint();
  if (P * D * 4 > r.remaining) throw new BinaryFormatError('snapshot is truncated (points)');
  out.push(P);
  for (let i = 0; i < P * D; i++) out.push(r.i32());
  for (let t = 0; t < config.numberOfTrees; t++) {
    for (let i = 0; i < 4; i++) out.push(r.i32());
    const size = r.varint();
    if (size > config.sampleSize) throw new SnapshotError(`tree ${t}: sampler size ${size} exceeds ${config.sampleSize}`);
    out.push(size);
    for (let i = 0; i < size; i++) out.push(r.i32());
    for (let i = 0; i < size; i++) out.push(r.varint());
    const count = r.varint();
    if (count > 2 * config.sampleSize) throw new SnapshotError(`tree ${t}: node count ${count}`);
    out.push(count);
    const kinds = r.raw((count + 7) >> 3);
    for (let i = 0; i < count; i++) {
      if (kinds[i >> 3]! & (1 << (i & 7))) out.push(1, r.varint());
      else out.push(0, D > 1 ? r.varint() : 0, r.i32());
    }
  }
  if (r.remaining !== 0) throw new SnapshotError(`snapshot body has ${r.remaining} unexpected trailing bytes`);
  return Int32Array.from(out);
}

/** Reads and checks a snapshot's header, checksum and body; returns its info and model words. */
export function decodeSnapshot(bytes: Uint8Array): SnapshotInfo & { words: Int32Array } {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('snapshot must be a Uint8Array');
  try {
    if (bytes.length < 8) throw new SnapshotError(`not an rcf-stream forest snapshot (${bytes.length} bytes)`);
    const r = new ByteReader(bytes, 'snapshot');
    if (r.u32() !== SNAPSHOT_MAGIC) throw new SnapshotError('not an rcf-stream forest snapshot (bad magic)');
    const format = r.u16();
    if (format !== SNAPSHOT_FORMAT) throw new SnapshotError(`unsupported snapshot format version ${format} (this build reads ${SNAPSHOT_FORMAT})`);
    const engineCode = r.u8();
    const engine = engineCode === 1 ? 'wasm' : engineCode === 2 ? 'ts' : null;
    if (!engine) throw new SnapshotError(`unknown engine code ${engineCode}`);
    r.u8();
    const binaryId = Array.from(r.raw(8), (b) => b.toString(16).padStart(2, '0')).join('');
    const T = r.u16();
    const S = r.u16();
    const b = r.u8();
    const k = r.u8();
    const timeDecay = r.f64();
    const outputAfter = r.f64();
    const seedHi = r.i32();
    const seedLo = r.i32();
    const bodyLength = r.u32();
    if (r.remaining !== bodyLength + 4) {
      throw new SnapshotError(`snapshot is truncated or has trailing data (body ${bodyLength} bytes, ${r.remaining - 4} present)`);
    }
    const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
    if (crc32(bytes, 0, bytes.length - 4) !== stored) throw new SnapshotError('snapshot checksum mismatch: the data is corrupt');
    const inRange = (v: number, [lo, hi]: readonly [number, number]) => Number.isInteger(v) && v >= lo && v <= hi;
    if (!inRange(T, LIMITS.numberOfTrees) || !inRange(S, LIMITS.sampleSize) || !inRange(b, LIMITS.dimensions) || !inRange(k, LIMITS.shingleSize)) {
      throw new SnapshotError('snapshot configuration is out of range');
    }
    if (!(timeDecay >= 0 && Number.isFinite(timeDecay)) || !(Number.isSafeInteger(outputAfter) && outputAfter >= 1)) {
      throw new SnapshotError('snapshot configuration is out of range');
    }
    const config: ForestConfig = {
      baseDimensions: b, shingleSize: k, dimensions: b * k, numberOfTrees: T, sampleSize: S, timeDecay, outputAfter, seedHi, seedLo,
    };
    const words = unpackBody(new ByteReader(r.raw(bodyLength), 'snapshot body'), config);
    validateModelState(config, words);
    return { format, engine, binaryId, config, words };
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    if (e instanceof BinaryFormatError || (e instanceof Error && e.name === 'ModelStateError')) throw new SnapshotError(e.message);
    throw e;
  }
}
