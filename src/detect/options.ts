/**
 * The detection options, declared once: every interface (detect and run flags, RCF_*
 * environment variables, JSON config keys) reads them from this table and validates them
 * with readDetectionSettings(). Errors are OptionErrors naming the option by its library /
 * JSON name; `spellOption` gives each interface's spelling:
 *
 *   flag --trees   environment RCF_TREES   JSON numberOfTrees
 */
import { LIMITS, resolveOptions, type ForestOptions } from '../forest/options.js';
import { MAX_FIELDS, validateFieldMapping, type FieldMapping } from '../io/record-parser.js';
import { OptionError } from '../util/option-error.js';
import { DEFAULT_MAX_KEYS } from './detector.js';
import type { DetectionSettings } from './settings.js';
import { parseThresholdStrategy } from './strategy.js';

export interface DetectionOption {
  /** The flag, without dashes (also the env name: RCF_ + upper case). */
  flag: string;
  /** The library / JSON name (config files accept it, and camelCase of the flag). */
  key: string;
  type: 'string' | 'boolean';
  /** One line of help. */
  help: string;
}

export const DETECTION_OPTIONS: readonly DetectionOption[] = [
  { flag: 'fields', key: 'fields', type: 'string', help: `numeric fields forming the point (1-${MAX_FIELDS})` },
  { flag: 'time-field', key: 'timeField', type: 'string', help: "field holding the record's time (for notifications)" },
  { flag: 'key-field', key: 'keyField', type: 'string', help: 'one model per value of this field' },
  { flag: 'max-keys', key: 'maxKeys', type: 'string', help: 'most models kept with --key-field (LRU)' },
  { flag: 'trees', key: 'numberOfTrees', type: 'string', help: `number of trees (${LIMITS.numberOfTrees.join('-')})` },
  { flag: 'sample-size', key: 'sampleSize', type: 'string', help: `points kept per tree (${LIMITS.sampleSize.join('-')})` },
  { flag: 'shingle', key: 'shingleSize', type: 'string', help: `consecutive records per point (${LIMITS.shingleSize.join('-')})` },
  { flag: 'time-decay', key: 'timeDecay', type: 'string', help: 'forgetting rate' },
  { flag: 'output-after', key: 'outputAfter', type: 'string', help: 'records before scores start' },
  { flag: 'seed', key: 'randomSeed', type: 'string', help: 'random seed (64-bit integer)' },
  { flag: 'engine', key: 'engine', type: 'string', help: 'WebAssembly kernel or pure TypeScript' },
  { flag: 'threshold', key: 'threshold', type: 'string', help: 'fixed score threshold, or adaptive' },
  { flag: 'parity', key: 'parity', type: 'string', help: 'with auto: AWS ThresholdedRandomCutForest behaviour' },
  { flag: 'explain', key: 'explain', type: 'boolean', help: 'add a per-field "explanation"' },
  { flag: 'output-fields', key: 'outputFields', type: 'string', help: 'write only these fields' },
  { flag: 'shape', key: 'shape', type: 'string', help: "flink: the reference Flink sample's shape (time,value,score)" },
];

const BY_KEY = new Map(DETECTION_OPTIONS.map((o) => [o.key, o]));
const BY_FLAG = new Map(DETECTION_OPTIONS.map((o) => [o.flag, o]));

export type OptionStyle = 'flag' | 'env' | 'json';

/** `--trees`, `RCF_TREES` or `numberOfTrees` for the option named `key` (or a flag name). */
export function spellOption(key: string, style: OptionStyle): string {
  const o = BY_KEY.get(key) ?? BY_FLAG.get(key);
  const flag = o?.flag ?? key;
  if (style === 'flag') return `--${flag}`;
  if (style === 'env') return `RCF_${flag.toUpperCase().replace(/-/g, '_')}`;
  return o?.key ?? key;
}

/** The option's flag name for its key (or the key when it has no entry). */
export function flagOf(key: string): string {
  return BY_KEY.get(key)?.flag ?? key;
}

/** Values by flag name, as node:util parseArgs gives them. */
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

function text(values: OptionValues, flag: string): string | undefined {
  const v = values[flag];
  return typeof v === 'string' ? v : undefined;
}

function keyOf(flag: string): string {
  return BY_FLAG.get(flag)?.key ?? flag;
}

function integer(values: OptionValues, flag: string, min: number, max: number): number | undefined {
  const t = text(values, flag);
  if (t === undefined) return undefined;
  const trimmed = t.trim().replace(/_/g, '');
  const value = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(value)) throw new OptionError(keyOf(flag), `must be an integer, got ${JSON.stringify(t)}`);
  if (value < min || value > max) throw new OptionError(keyOf(flag), `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function number(values: OptionValues, flag: string, min: number): number | undefined {
  const t = text(values, flag);
  if (t === undefined) return undefined;
  const trimmed = t.trim();
  const value = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isFinite(value)) throw new OptionError(keyOf(flag), `must be a number, got ${JSON.stringify(t)}`);
  if (value < min) throw new OptionError(keyOf(flag), `must be >= ${min}, got ${value}`);
  return value;
}

function choice<T extends string>(values: OptionValues, flag: string, choices: readonly T[]): T | undefined {
  const t = text(values, flag);
  if (t === undefined) return undefined;
  if (!(choices as readonly string[]).includes(t)) throw new OptionError(keyOf(flag), `must be ${choices.map((c) => JSON.stringify(c)).join(' or ')}, got ${JSON.stringify(t)}`);
  return t as T;
}

function list(values: OptionValues, flag: string): string[] | undefined {
  const t = text(values, flag);
  if (t === undefined) return undefined;
  const items = t.split(',').map((s) => s.trim());
  if (items.some((s) => s.length === 0)) throw new OptionError(keyOf(flag), `must be a comma-separated list of names, got ${JSON.stringify(t)}`);
  return items;
}

/** An error of resolveOptions (which names ForestOptions keys) as an OptionError. */
function asOptionError(error: unknown): unknown {
  const e = error as { option?: unknown; detail?: unknown };
  return typeof e?.option === 'string' && typeof e.detail === 'string' ? new OptionError(e.option, e.detail) : error;
}

/** The detection settings in `values` (flag names), with the defaults; throws OptionError. */
export function readDetectionSettings(values: OptionValues): DetectionSettings {
  const fields = list(values, 'fields') ?? ['value'];
  if (fields.length > MAX_FIELDS) throw new OptionError('fields', `names ${fields.length} fields; at most ${MAX_FIELDS} are supported`);
  const mapping: FieldMapping = { fields, timeField: text(values, 'time-field'), keyField: text(values, 'key-field') };
  validateFieldMapping(mapping);

  const forest: ForestOptions = {
    dimensions: fields.length,
    shingleSize: integer(values, 'shingle', LIMITS.shingleSize[0], LIMITS.shingleSize[1]) ?? 1,
    numberOfTrees: integer(values, 'trees', LIMITS.numberOfTrees[0], LIMITS.numberOfTrees[1]) ?? 50,
    sampleSize: integer(values, 'sample-size', LIMITS.sampleSize[0], LIMITS.sampleSize[1]) ?? 256,
    timeDecay: number(values, 'time-decay', 0),
    outputAfter: integer(values, 'output-after', 1, Number.MAX_SAFE_INTEGER),
    randomSeed: text(values, 'seed') ?? '0',
    engine: choice(values, 'engine', ['wasm', 'ts'] as const) ?? 'wasm',
  };
  if (forest.timeDecay === undefined) delete forest.timeDecay;
  if (forest.outputAfter === undefined) delete forest.outputAfter;
  try {
    resolveOptions(forest);
  } catch (error) {
    throw asOptionError(error);
  }

  let threshold: DetectionSettings['threshold'];
  const thresholdText = text(values, 'threshold');
  const parity = text(values, 'parity');
  if (parity !== undefined && parity !== 'aws') throw new OptionError('parity', `must be "aws", got ${JSON.stringify(parity)}`);
  if (parity !== undefined && (thresholdText ?? '').trim() !== 'auto') throw new OptionError('parity', 'applies only to --threshold auto');
  try {
    threshold = parseThresholdStrategy(thresholdText, parity);
  } catch {
    throw new OptionError('threshold', `must be a number or "auto", got ${JSON.stringify((thresholdText ?? '').trim())}`);
  }

  let outputFields = list(values, 'output-fields');
  const shape = choice(values, 'shape', ['full', 'flink'] as const);
  if (shape !== undefined && outputFields !== undefined) throw new OptionError('shape', 'cannot be combined with --output-fields');
  if (shape === 'flink') outputFields = ['time', 'value', 'score'];
  // An explanation the output then leaves out would be computed and silently dropped.
  if (values['explain'] === true && shape === 'flink') {
    throw new OptionError('explain', 'adds "explanation", which --shape flink (time,value,score) leaves out; use --output-fields time,value,score,explanation');
  }
  if (values['explain'] === true && outputFields !== undefined && !outputFields.includes('explanation')) {
    throw new OptionError('explain', 'adds "explanation", which --output-fields leaves out; add it to the list');
  }

  const maxKeys = integer(values, 'max-keys', 1, 1_000_000) ?? DEFAULT_MAX_KEYS;
  if (values['max-keys'] !== undefined && mapping.keyField === undefined) throw new OptionError('maxKeys', 'needs --key-field');

  return { mapping, forest, threshold, maxKeys, explain: values['explain'] === true, outputFields };
}
