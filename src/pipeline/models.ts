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
import type { GraderFactory, RecordDetector } from '../detect/detector.js';
import type { DetectionSettings } from '../detect/settings.js';

const MAGIC = Buffer.from('RCFSVC', 'latin1');
const FORMAT = 1;

export class ModelMismatchError extends Error {
  override readonly name = 'ModelMismatchError';
}

/** The settings that decide what a model is; engine, explanations and maxKeys do not. */
export function modelFingerprint(detect: DetectionSettings): string {
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
  detect: DetectionSettings;
  grader: GraderFactory;
}

/**
 * The detector saved in `bytes`. Throws ModelMismatchError when it was trained
 * with other settings, SnapshotError (or Error) when the bytes are damaged.
 */
export async function decodeModels(bytes: Uint8Array, options: RestoreModelOptions): Promise<RecordDetector> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MAGIC.length + 5 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('checkpoint models are not an rcf-stream service snapshot');
  const format = buf.readUInt8(MAGIC.length);
  if (format !== FORMAT) throw new Error(`checkpoint models have format ${format}; this build reads ${FORMAT}`);
  const headerLength = buf.readUInt32BE(MAGIC.length + 1);
  const start = MAGIC.length + 5 + headerLength;
  if (start > buf.length) throw new Error('checkpoint models: header length out of range');
  const header = JSON.parse(buf.subarray(MAGIC.length + 5, start).toString('utf8')) as { settings?: unknown };
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
