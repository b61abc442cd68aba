/**
 * Detector snapshots: every model of a detector (each key's forest snapshot and its
 * grader's state) in one checksummed binary image, so a restarted service or CLI continues
 * exactly where it stopped — the same scores, grades and thresholds, and the same LRU order.
 *
 *   "RCFD" | format u16 | flags u16 (bit 0: keyed) | evictions f64 | models u32
 *   per model, least recently used first:
 *     key (LEB128 length + UTF-8) | grader kind u8 | state length (LEB128) + f64 values
 *     | forest snapshot length (LEB128) + bytes (src/forest/snapshot.ts)
 *   CRC-32 of everything before it
 */
import { restoreForestSync, loadKernel } from '../forest/create.js';
import { SnapshotError } from '../forest/snapshot.js';
import type { EngineName } from '../forest/options.js';
import { BinaryFormatError, ByteReader, ByteWriter, crc32 } from '../util/binary.js';
import { Detector, KeyedDetector, type DetectorOptions, type KeyedDetectorOptions, type Model, type RecordDetector } from './detector.js';
import { FixedThresholdGrader, type Grader } from './grader.js';
import { QualityGrader } from './quality-grader.js';
import { TrcfThresholder } from './thresholder.js';

const MAGIC = 0x44464352; // "RCFD" read as little-endian u32
const FORMAT = 1;

const GRADERS = [
  { kind: 1, type: FixedThresholdGrader, restore: (s: Float64Array) => FixedThresholdGrader.restoreState(s) },
  { kind: 2, type: TrcfThresholder, restore: (s: Float64Array) => TrcfThresholder.restoreState(s) },
  { kind: 3, type: QualityGrader, restore: (s: Float64Array) => QualityGrader.restoreState(s) },
] as const;

function graderKind(grader: Grader): number {
  for (const g of GRADERS) if (grader instanceof g.type) return g.kind;
  throw new TypeError(`cannot snapshot a grader of type ${grader.constructor.name}`);
}

export function snapshotDetector(detector: RecordDetector): Uint8Array {
  const w = new ByteWriter();
  w.u32(MAGIC);
  w.u16(FORMAT);
  w.u16(detector instanceof KeyedDetector ? 1 : 0);
  w.f64(detector.evictions);
  const models = [...detector.entries()];
  w.u32(models.length);
  const utf8 = new TextEncoder();
  for (const [key, model] of models) {
    const k = utf8.encode(key);
    w.varint(k.length);
    w.raw(k);
    w.u8(graderKind(model.grader));
    const state = model.grader.saveState?.() ?? new Float64Array(0);
    w.varint(state.length);
    for (const v of state) w.f64(v);
    const forest = model.forest.snapshot();
    w.varint(forest.length);
    w.raw(forest);
  }
  const body = w.finish();
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  return out;
}

export interface RestoreDetectorOptions extends KeyedDetectorOptions {
  /** Engine for the restored forests (either engine restores either's snapshots). */
  engine?: EngineName;
}

/**
 * Rebuilds a detector from snapshotDetector() bytes. `options` supply what a snapshot does
 * not hold (the grader factory for new keys, attribution, maxKeys); a keyed snapshot
 * becomes a KeyedDetector. Damaged input throws a SnapshotError and builds nothing.
 */
export async function restoreDetector(bytes: Uint8Array, options: RestoreDetectorOptions): Promise<RecordDetector> {
  const engine = options.engine ?? options.forest.engine ?? 'wasm';
  if (engine === 'wasm') await loadKernel();
  const { keyed, models } = decodeModels(bytes, engine);
  try {
    if (!keyed) {
      if (models.length !== 1) throw new SnapshotError(`a single-model detector snapshot holds ${models.length} models`);
      return new Detector(models[0]![1], options.attribution ?? false);
    }
    const forest = { ...options.forest, engine };
    const detector = new KeyedDetector({ ...(options as DetectorOptions), forest, maxKeys: options.maxKeys, onEvict: options.onEvict });
    for (const [key, model] of models) detector.insert(key, model);
    return detector;
  } catch (error) {
    for (const [, m] of models) m.forest.dispose();
    throw error;
  }
}

function decodeModels(bytes: Uint8Array, engine: EngineName): { keyed: boolean; models: Array<[string, Model]> } {
  const models: Array<[string, Model]> = [];
  try {
    if (!(bytes instanceof Uint8Array) || bytes.length < 12) throw new SnapshotError('not an rcf-stream detector snapshot');
    const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
    const r = new ByteReader(bytes.subarray(0, bytes.length - 4), 'detector snapshot');
    if (r.u32() !== MAGIC) throw new SnapshotError('not an rcf-stream detector snapshot (bad magic)');
    const format = r.u16();
    if (format !== FORMAT) throw new SnapshotError(`unsupported detector snapshot format ${format} (this build reads ${FORMAT})`);
    if (crc32(bytes, 0, bytes.length - 4) !== stored) throw new SnapshotError('detector snapshot checksum mismatch: the data is corrupt');
    const keyed = (r.u16() & 1) === 1;
    r.f64();
    const count = r.u32();
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < count; i++) {
      const key = utf8.decode(r.raw(r.varint()));
      const kind = r.u8();
      const n = r.varint();
      const state = new Float64Array(n);
      for (let j = 0; j < n; j++) state[j] = r.f64();
      const forestBytes = r.raw(r.varint());
      const g = GRADERS.find((x) => x.kind === kind);
      if (!g) throw new SnapshotError(`model ${JSON.stringify(key)}: unknown grader kind ${kind}`);
      let grader: Grader;
      try {
        grader = g.restore(state);
      } catch (e) {
        throw new SnapshotError(`model ${JSON.stringify(key)}: ${(e as Error).message}`);
      }
      models.push([key, { forest: restoreForestSync(forestBytes, { engine }), grader }]);
    }
    if (r.remaining !== 0) throw new SnapshotError(`detector snapshot has ${r.remaining} unexpected trailing bytes`);
    return { keyed, models };
  } catch (error) {
    for (const [, m] of models) m.forest.dispose();
    if (error instanceof BinaryFormatError) throw new SnapshotError(error.message);
    throw error;
  }
}
