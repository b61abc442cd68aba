/**
 * The models part of a service checkpoint: the detector snapshot behind a
 * small header naming the detection settings that produced it.
 *
 *   "RCFSVC" u8 format | u32 BE header length | header JSON | detector snapshot
 *
 * Format 1 holds one detector (detect --state, and the Lambda's per-shard state);
 * format 2 the models of a service, one detector per model scope (see
 * scoped-models.ts), each behind its length:
 *
 *   "RCFSVC" 2 | u32 BE header length | header JSON {settings, scope, parts: [[name, bytes]...]} | snapshots
 *
 * The header lets a restart refuse models trained with other settings (more
 * trees, another field list...) instead of silently continuing with them; the
 * snapshot itself is checksummed by src/detect/detector-snapshot.ts.
 */
import { resolveOptions } from '../forest/options.js';
import { snapshotDetector, restoreDetector } from '../detect/detector-snapshot.js';
import { DetectionBatch, type GraderFactory, type RecordDetector } from '../detect/detector.js';
import { createRecordDetector } from '../detect/detector-spec.js';
import { mulberry32 } from '../generate/temperature.js';
import type { DetectionSettings, ModelScope } from '../detect/settings.js';
import type { DetectorSpec } from '../detect/detector-spec.js';
import { ScopedModels } from './scoped-models.js';
import { DETECTION_OPTIONS, spellOption } from '../detect/options.js';
import { RcfStreamError } from '../util/errors.js';

const MAGIC = Buffer.from('RCFSVC', 'latin1');
const FORMAT = 1;

export class ModelMismatchError extends RcfStreamError {
  override readonly name = 'ModelMismatchError';
  readonly code = 'MODEL_MISMATCH';
  constructor(
    /** What differs, without advice (each interface adds its own). */
    readonly mismatch: string,
    advice: string,
  ) {
    super(`${mismatch} ${advice}`);
  }
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
  /** Where the bytes come from (a checkpoint location), named in errors about damaged bytes. */
  source?: string;
}

/** The saved models are damaged: says where they came from and what is wrong. */
export class ModelSnapshotCorruptError extends RcfStreamError {
  override readonly name = 'ModelSnapshotCorruptError';
  readonly code = 'MODELS_CORRUPT';
}

/**
 * The detector saved in `bytes`. Throws ModelMismatchError when it was trained
 * with other settings, SnapshotError (or Error) when the bytes are damaged.
 */
export async function decodeModels(bytes: Uint8Array, options: RestoreModelOptions): Promise<RecordDetector> {
  const { format, header, body } = readEnvelope(bytes, options.source);
  if (format !== FORMAT) throw new Error(`checkpoint models have format ${format}; expected ${FORMAT} (one detector)`);
  checkSettings(header, options.detect);
  return restore(body, options);
}

interface Envelope {
  format: number;
  header: { settings?: unknown; scope?: unknown; parts?: unknown };
  body: Buffer;
}

/** What a file that is not a snapshot looks like, so the user can tell what they pointed at. */
function describeStart(buf: Buffer): string {
  if (buf.length === 0) return 'it is empty';
  const head = buf.subarray(0, 24);
  const printable = head.every((c) => (c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d);
  const shown = printable ? JSON.stringify(head.toString('latin1')) : `bytes ${head.toString('hex').replace(/(..)/g, '$1 ').trim()}`;
  return `its ${buf.length.toLocaleString('en-US')} bytes start with ${shown}${printable ? ' (text)' : ''}`;
}

function readEnvelope(bytes: Uint8Array, source: string | undefined): Envelope {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const where = source !== undefined ? `${source}: ` : '';
  const corrupt = (what: string): ModelSnapshotCorruptError => new ModelSnapshotCorruptError(`${where}checkpoint models ${what}`);
  if (buf.length < MAGIC.length + 5 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt(`are not an rcf-stream model snapshot: ${describeStart(buf)}; a model snapshot starts with "${MAGIC.toString('latin1')}"`);
  }
  const format = buf.readUInt8(MAGIC.length);
  if (format !== FORMAT && format !== SCOPED_FORMAT) throw corrupt(`have format ${format}; this build reads ${FORMAT} and ${SCOPED_FORMAT}`);
  const headerLength = buf.readUInt32BE(MAGIC.length + 1);
  const start = MAGIC.length + 5 + headerLength;
  if (start > buf.length) throw corrupt(`are damaged: the settings header says ${headerLength} bytes, but only ${buf.length - MAGIC.length - 5} follow`);
  let header: Envelope['header'];
  try {
    header = JSON.parse(buf.subarray(MAGIC.length + 5, start).toString('utf8')) as Envelope['header'];
  } catch (e) {
    // A raw SyntaxError ("Unexpected token") would not say which file or part is damaged.
    throw corrupt(`are damaged: the settings header (${headerLength} bytes) is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || typeof header.settings !== 'object' || header.settings === null) {
    throw corrupt('are damaged: the settings header has no settings object');
  }
  return { format, header, body: buf.subarray(start) };
}

function checkSettings(header: Envelope['header'], detect: DetectionSettings): void {
  const saved = JSON.stringify(header.settings);
  const wanted = modelFingerprint(detect);
  if (saved !== wanted) {
    throw new ModelMismatchError(
      `the checkpoint's models were trained with other detection settings (${describeDifferences(header.settings, JSON.parse(wanted) as unknown)}).`,
      'Run with the same settings, or with --reset-models to start new models from the saved positions.',
    );
  }
}

/** A saved threshold strategy as the user spells it (`auto`, `3`), not as JSON. */
function describeThreshold(x: unknown): string {
  const t = (typeof x === 'object' && x !== null ? x : {}) as { kind?: unknown; value?: unknown };
  if (t.kind === 'fixed' && typeof t.value === 'number') return String(t.value);
  if (t.kind === 'quality') return 'auto';
  if (t.kind === 'trcf') return 'auto --parity aws';
  return JSON.stringify(x);
}

/** The settings that differ, by option: `--trees: saved 50, now 20`. */
function describeDifferences(saved: unknown, wanted: unknown): string {
  const flat = (v: unknown): Map<string, string> => {
    const out = new Map<string, string>();
    const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
    for (const [k, x] of Object.entries(o)) {
      if (k === 'forest' && typeof x === 'object' && x !== null) for (const [fk, fx] of Object.entries(x)) out.set(fk, JSON.stringify(fx));
      else if (k === 'threshold') out.set(k, describeThreshold(x));
      else out.set(k, JSON.stringify(x));
    }
    // The seed is stored as two 32-bit words; one name for both.
    const hi = out.get('seedHi');
    const lo = out.get('seedLo');
    out.delete('seedHi');
    out.delete('seedLo');
    if (hi !== undefined && lo !== undefined) out.set('randomSeed', BigInt.asIntN(64, (BigInt(Number(hi)) << 32n) | BigInt(Number(lo) >>> 0)).toString());
    return out;
  };
  const a = flat(saved);
  const b = flat(wanted);
  const parts: string[] = [];
  const derived: string[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(key) === b.get(key)) continue;
    // Options by their flag; derived values (dimensions follow --fields) only when nothing else explains it.
    const flag = DETECTION_OPTIONS.some((o) => o.key === key) ? spellOption(key, 'flag') : undefined;
    if (flag !== undefined) parts.push(`${flag}: saved ${a.get(key) ?? 'none'}, now ${b.get(key) ?? 'none'}`);
    else derived.push(`${key}: saved ${a.get(key) ?? 'none'}, now ${b.get(key) ?? 'none'}`);
  }
  return (parts.length > 0 ? parts : derived).join('; ') || 'unknown differences';
}

function restore(bytes: Uint8Array, options: RestoreModelOptions): Promise<RecordDetector> {
  const { detect } = options;
  return restoreDetector(bytes, {
    forest: detect.forest,
    grader: options.grader,
    attribution: detect.explain,
    maxKeys: detect.maxKeys,
    engine: detect.forest.engine ?? 'wasm',
  });
}

const SCOPED_FORMAT = 2;

/** Snapshot of every scope's models (format 2), ready for Checkpoint.models. */
export function encodeScopedModels(models: ScopedModels, fingerprint: string): Uint8Array {
  const named: [string, Uint8Array][] = [];
  for (const [name, detector] of models.entries()) named.push([name, snapshotDetector(detector)]);
  return encodeScopedParts(models.scope, named, fingerprint);
}

/** The same image from snapshotDetector() bytes by scope name (models held by worker threads). */
export function encodeScopedParts(scope: ModelScope, named: Iterable<[string, Uint8Array]>, fingerprint: string): Uint8Array {
  const snapshots: Uint8Array[] = [];
  const parts: [string, number][] = [];
  for (const [name, snapshot] of named) {
    snapshots.push(snapshot);
    parts.push([name, snapshot.byteLength]);
  }
  const header = Buffer.from(JSON.stringify({ settings: JSON.parse(fingerprint) as unknown, scope, parts }), 'utf8');
  const head = Buffer.alloc(MAGIC.length + 5);
  MAGIC.copy(head, 0);
  head.writeUInt8(SCOPED_FORMAT, MAGIC.length);
  head.writeUInt32BE(header.length, MAGIC.length + 1);
  return Buffer.concat([head, header, ...snapshots]);
}

/**
 * The service's models saved in `bytes`, for `scope`. A format-1 snapshot (one detector,
 * saved by releases before model scopes) is taken as stream-scope models.
 */
export async function decodeScopedModels(bytes: Uint8Array, options: RestoreModelOptions & { scope: ModelScope; spec: DetectorSpec }): Promise<ScopedModels> {
  const { format, header, body } = readEnvelope(bytes, options.source);
  checkSettings(header, options.detect);
  const savedScope = format === FORMAT ? 'stream' : header.scope;
  if (savedScope !== options.scope) {
    throw new ModelMismatchError(
      `the checkpoint's models have model scope ${String(savedScope)}; now ${options.scope}.`,
      `Run with --model-scope ${String(savedScope)}, or with --reset-models to start new models from the saved positions.`,
    );
  }
  const restored = new Map<string, RecordDetector>();
  try {
    if (format === FORMAT) restored.set('', await restore(body, options));
    else {
      if (!Array.isArray(header.parts)) throw new Error('checkpoint models: the header lists no parts');
      let at = 0;
      for (const part of header.parts as unknown[]) {
        if (!Array.isArray(part) || typeof part[0] !== 'string' || !Number.isSafeInteger(part[1]) || (part[1] as number) < 0) throw new Error('checkpoint models: a malformed part in the header');
        const length = part[1] as number;
        if (at + length > body.length) throw new Error('checkpoint models: a part runs past the end');
        restored.set(part[0], await restore(body.subarray(at, at + length), options));
        at += length;
      }
      if (at !== body.length) throw new Error('checkpoint models: bytes after the last part');
    }
  } catch (error) {
    for (const d of restored.values()) d.dispose();
    throw error;
  }
  return new ScopedModels(options.scope, options.spec, restored);
}

/**
 * About how many bytes one model takes in a checkpoint once its trees are
 * full: one model of these settings fed 3 x sampleSize points, snapshotted.
 * An upper bound for young models, used to refuse a store too small for the
 * models before their output is written (not after, at the next checkpoint).
 */
export async function estimateModelBytes(detect: DetectionSettings): Promise<number> {
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
