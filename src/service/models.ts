/**
 * The models part of a service checkpoint: the detector snapshot behind a
 * small header naming the detection settings that produced it.
 *
 *   "RCFSVC" u8 format | u32 BE header length | header JSON | detector snapshot
 *
 * The header lets a restart refuse models trained with other settings (more
 * trees, another field list...) instead of silently continuing with them; the
 * snapshot itself is checksummed by src/detect/detector-snapshot.ts.
 */
import { resolveOptions } from '../forest/options.js';
import { snapshotDetector, restoreDetector } from '../detect/detector-snapshot.js';
import { DetectionBatch, type GraderFactory, type RecordDetector } from '../detect/detector.js';
import { createRecordDetector } from '../detect/detector-host.js';
import { mulberry32 } from '../generate/temperature.js';
import type { DetectConfig } from '../cli/detect-command.js';

const MAGIC = Buffer.from('RCFSVC', 'latin1');
const FORMAT = 1;

export class ModelMismatchError extends Error {
  override readonly name = 'ModelMismatchError';
}

/** The settings that decide what a model is; engine, explanations and maxKeys do not. */
export function modelFingerprint(detect: DetectConfig): string {
  const { engine: _engine, ...forest } = resolveOptions(detect.forest);
  return JSON.stringify({
    fields: detect.mapping.fields,
    keyField: detect.mapping.keyField ?? null,
    forest,
    threshold: detect.threshold,
  });
}

/** Snapshot of every model, ready for Checkpoint.models. */
export function encodeModels(detector: RecordDetector, fingerprint: string): Uint8Array {
  const header = Buffer.from(JSON.stringify({ settings: JSON.parse(fingerprint) as unknown }), 'utf8');
  const snapshot = snapshotDetector(detector);
  const out = Buffer.alloc(MAGIC.length + 1 + 4 + header.length + snapshot.length);
  MAGIC.copy(out, 0);
  out.writeUInt8(FORMAT, MAGIC.length);
  out.writeUInt32BE(header.length, MAGIC.length + 1);
  header.copy(out, MAGIC.length + 5);
  out.set(snapshot, MAGIC.length + 5 + header.length);
  return out;
}

export interface RestoreModelOptions {
  detect: DetectConfig;
  grader: GraderFactory;
  /** Where the bytes come from (a checkpoint location), named in errors about damaged bytes. */
  source?: string;
}

/** The saved models are damaged: says where they came from and what is wrong. */
export class ModelSnapshotCorruptError extends Error {
  override readonly name = 'ModelSnapshotCorruptError';
}

/**
 * The detector saved in `bytes`. Throws ModelMismatchError when it was trained
 * with other settings, SnapshotError (or Error) when the bytes are damaged.
 */
export async function decodeModels(bytes: Uint8Array, options: RestoreModelOptions): Promise<RecordDetector> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const where = options.source !== undefined ? `${options.source}: ` : '';
  const corrupt = (what: string): ModelSnapshotCorruptError => new ModelSnapshotCorruptError(`${where}checkpoint models ${what}`);
  if (buf.length < MAGIC.length + 5 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('are not an rcf-stream service snapshot');
  const format = buf.readUInt8(MAGIC.length);
  if (format !== FORMAT) throw corrupt(`have format ${format}; this build reads ${FORMAT}`);
  const headerLength = buf.readUInt32BE(MAGIC.length + 1);
  const start = MAGIC.length + 5 + headerLength;
  if (start > buf.length) throw corrupt(`are damaged: the settings header says ${headerLength} bytes, but only ${buf.length - MAGIC.length - 5} follow`);
  let header: { settings?: unknown };
  try {
    header = JSON.parse(buf.subarray(MAGIC.length + 5, start).toString('utf8')) as { settings?: unknown };
  } catch (e) {
    // A raw SyntaxError ("Unexpected token") would not say which file or part is damaged.
    throw corrupt(`are damaged: the settings header (${headerLength} bytes) is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || typeof header.settings !== 'object' || header.settings === null) {
    throw corrupt('are damaged: the settings header has no settings object');
  }
  const saved = JSON.stringify(header.settings);
  const wanted = modelFingerprint(options.detect);
  if (saved !== wanted) {
    throw new ModelMismatchError(
      `the checkpoint's models were trained with other detection settings (${saved}; now ${wanted}). ` +
        'Run with the same settings, or with --reset-models to start new models from the saved positions.',
    );
  }
  const { detect } = options;
  return restoreDetector(buf.subarray(start), {
    forest: detect.forest,
    grader: options.grader,
    attribution: detect.explain,
    maxKeys: detect.maxKeys,
    engine: detect.forest.engine ?? 'wasm',
  });
}

/**
 * About how many bytes one model takes in a checkpoint once its trees are
 * full: one model of these settings fed 3 x sampleSize points, snapshotted.
 * An upper bound for young models, used to refuse a store too small for the
 * models before their output is written (not after, at the next checkpoint).
 */
export async function estimateModelBytes(detect: DetectConfig): Promise<number> {
  const forest = resolveOptions(detect.forest);
  const detector = await createRecordDetector({ forest: detect.forest, threshold: detect.threshold, attribution: false, keyed: true, maxKeys: 1 });
  try {
    const n = 3 * forest.sampleSize;
    const batch = new DetectionBatch(n, forest.dimensions);
    const random = mulberry32(1);
    for (let i = 0; i < n * forest.dimensions; i++) batch.values[i] = random();
    batch.keys.fill('k');
    batch.count = n;
    detector.run(batch);
    return encodeModels(detector, modelFingerprint(detect)).byteLength;
  } finally {
    detector.dispose();
  }
}
