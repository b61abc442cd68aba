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
import { OptionError, describeOptionError } from '../util/option-error.js';
import { DEFAULT_MAX_KEYS } from './detector.js';
import type { DetectionSettings } from './settings.js';
import { DEFAULT_THRESHOLD, parseThresholdStrategy } from './strategy.js';
import type { HelpRow } from '../util/help-text.js';

export type DetectionGroup = 'input' | 'model' | 'decision' | 'output';

export interface DetectionOption {
  /** The flag, without dashes (also the env name: RCF_ + upper case). */
  flag: string;
  /** The library / JSON name (config files accept it, and camelCase of the flag). */
  key: string;
  type: 'string' | 'boolean';
  /** Where help lists it: Input, Model, Decision or Output. */
  group: DetectionGroup;
  /** The value's placeholder in help (`N`, `a,b,c`); none for a switch. */
  value?: string;
  /** The help text: the one description of the option, for every command. */
  help: string;
  /** The default as help shows it; none when the option is off unless given. */
  default?: string;
}

/** The defaults readDetectionSettings applies (help shows the same figures). */
export const DETECTION_DEFAULTS = Object.freeze({
  fields: ['value'] as readonly string[],
  numberOfTrees: 50,
  sampleSize: 256,
  shingleSize: 1,
  randomSeed: '0',
  engine: 'wasm' as const,
  maxKeys: DEFAULT_MAX_KEYS,
});

const D = DETECTION_DEFAULTS;
const range = (limits: readonly [number, number]): string => limits.join('-');

export const DETECTION_OPTIONS: readonly DetectionOption[] = [
  { flag: 'fields', key: 'fields', type: 'string', group: 'input', value: 'a,b,c', help: `numeric fields forming the point (1-${MAX_FIELDS})`, default: D.fields.join(',') },
  {
    flag: 'time-field',
    key: 'timeField',
    type: 'string',
    group: 'input',
    value: 'NAME',
    help: "field holding the record's time, for notifications; with --threshold auto, ISO-8601 or epoch times also give the grader the time of day and time-based suppression",
  },
  { flag: 'key-field', key: 'keyField', type: 'string', group: 'input', value: 'NAME', help: 'one model per value of this field' },
  { flag: 'max-keys', key: 'maxKeys', type: 'string', group: 'input', value: 'N', help: 'most models kept with --key-field (least recently used dropped)', default: String(D.maxKeys) },
  { flag: 'trees', key: 'numberOfTrees', type: 'string', group: 'model', value: 'N', help: `number of trees (${range(LIMITS.numberOfTrees)})`, default: String(D.numberOfTrees) },
  { flag: 'sample-size', key: 'sampleSize', type: 'string', group: 'model', value: 'N', help: `points kept per tree (${range(LIMITS.sampleSize)})`, default: String(D.sampleSize) },
  { flag: 'shingle', key: 'shingleSize', type: 'string', group: 'model', value: 'N', help: `consecutive records per point (${range(LIMITS.shingleSize)})`, default: String(D.shingleSize) },
  { flag: 'time-decay', key: 'timeDecay', type: 'string', group: 'model', value: 'X', help: 'forgetting rate; 0: a uniform sample', default: '1/(10*sample-size)' },
  { flag: 'output-after', key: 'outputAfter', type: 'string', group: 'model', value: 'N', help: 'records before scores start', default: 'sample-size/4' },
  { flag: 'seed', key: 'randomSeed', type: 'string', group: 'model', value: 'N', help: 'random seed (64-bit integer)', default: D.randomSeed },
  { flag: 'engine', key: 'engine', type: 'string', group: 'model', value: 'wasm|ts', help: 'WebAssembly or TypeScript kernel (same results)', default: D.engine },
  {
    flag: 'threshold',
    key: 'threshold',
    type: 'string',
    group: 'decision',
    value: 'X|auto',
    help: 'anomaly when the score is at least X; auto: adaptive (the quality grader, docs/quality.md)',
    default: DEFAULT_THRESHOLD.toFixed(1),
  },
  { flag: 'parity', key: 'parity', type: 'string', group: 'decision', value: 'aws', help: "with --threshold auto: AWS ThresholdedRandomCutForest's grading instead" },
  { flag: 'explain', key: 'explain', type: 'boolean', group: 'output', help: 'add a per-field "explanation" (the shape of KDA RANDOM_CUT_FOREST_WITH_EXPLANATION)' },
  {
    flag: 'output-fields',
    key: 'outputFields',
    type: 'string',
    group: 'output',
    value: 'a,b,...',
    help: 'write only these fields: input fields, score, anomaly, grade, threshold, explanation (and recordId with run)',
  },
  { flag: 'shape', key: 'shape', type: 'string', group: 'output', value: 'flink', help: "the reference Flink sample's shape, the same as --output-fields time,value,score" },
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

/** An integer seed of any size (resolveOptions checks that it fits 64 bits). */
function seed(values: OptionValues): string | undefined {
  const t = text(values, 'seed');
  if (t === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(t.trim())) throw new OptionError('randomSeed', `must be an integer, got ${JSON.stringify(t)}`);
  return t.trim();
}

/** The forest options given in `values` (flag names), each checked, without defaults; throws OptionError. */
export function readForestOverrides(values: OptionValues): Omit<ForestOptions, 'dimensions'> {
  const given: Omit<ForestOptions, 'dimensions'> = {
    shingleSize: integer(values, 'shingle', LIMITS.shingleSize[0], LIMITS.shingleSize[1]),
    numberOfTrees: integer(values, 'trees', LIMITS.numberOfTrees[0], LIMITS.numberOfTrees[1]),
    sampleSize: integer(values, 'sample-size', LIMITS.sampleSize[0], LIMITS.sampleSize[1]),
    timeDecay: number(values, 'time-decay', 0),
    outputAfter: integer(values, 'output-after', 1, Number.MAX_SAFE_INTEGER),
    randomSeed: seed(values),
    engine: choice(values, 'engine', ['wasm', 'ts'] as const),
  };
  for (const k of Object.keys(given) as (keyof typeof given)[]) if (given[k] === undefined) delete given[k];
  checkForest({ dimensions: 1, ...given });
  return given;
}

/** resolveOptions(forest), its errors (which name ForestOptions keys) as OptionErrors. */
export function checkForest(forest: ForestOptions): void {
  try {
    resolveOptions(forest);
  } catch (error) {
    throw asOptionError(error);
  }
}

/** The field mapping in `values` (--fields, --time-field, --key-field); throws OptionError. */
export function readFieldMapping(values: OptionValues): FieldMapping {
  const fields = list(values, 'fields') ?? [...D.fields];
  if (fields.length > MAX_FIELDS) throw new OptionError('fields', `names ${fields.length} fields; at most ${MAX_FIELDS} are supported`);
  const mapping: FieldMapping = { fields, timeField: text(values, 'time-field'), keyField: text(values, 'key-field') };
  validateFieldMapping(mapping);
  return mapping;
}

/** The detection settings in `values` (flag names), with the defaults; throws OptionError. */
export function readDetectionSettings(values: OptionValues): DetectionSettings {
  const mapping = readFieldMapping(values);
  const forest: ForestOptions = {
    dimensions: mapping.fields.length,
    shingleSize: D.shingleSize,
    numberOfTrees: D.numberOfTrees,
    sampleSize: D.sampleSize,
    randomSeed: D.randomSeed,
    engine: D.engine,
    ...readForestOverrides(values),
  };
  checkForest(forest);

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

  const maxKeys = integer(values, 'max-keys', 1, 1_000_000) ?? D.maxKeys;
  if (values['max-keys'] !== undefined && mapping.keyField === undefined) throw new OptionError('maxKeys', 'needs --key-field');

  return { mapping, forest, threshold, maxKeys, explain: values['explain'] === true, outputFields };
}

/**
 * The detection options one command accepts: which table flags, under which names (the
 * demo's `--forest-seed`, as its `--seed` is the generator's), with which defaults shown
 * where the command's differ (eval's modes). Gives the command's parseArgs entries, the
 * values by table flag, each option's spelling in errors, and its help rows.
 */
export class DetectionOptionSet {
  readonly options: readonly DetectionOption[];
  readonly #rename: ReadonlyMap<string, string>;
  readonly #defaults: Readonly<Record<string, string>>;

  constructor(flags: readonly string[] | 'all', settings: { rename?: Readonly<Record<string, string>>; defaults?: Readonly<Record<string, string>> } = {}) {
    const wanted = flags === 'all' ? DETECTION_OPTIONS.map((o) => o.flag) : flags;
    for (const f of [...wanted, ...Object.keys(settings.rename ?? {}), ...Object.keys(settings.defaults ?? {})]) {
      if (!BY_FLAG.has(f)) throw new TypeError(`no detection option --${f}`);
    }
    this.options = DETECTION_OPTIONS.filter((o) => wanted.includes(o.flag));
    this.#rename = new Map(Object.entries(settings.rename ?? {}));
    this.#defaults = settings.defaults ?? {};
  }

  /** The command's flag for a table flag. */
  flagOf(flag: string): string {
    return this.#rename.get(flag) ?? flag;
  }

  /** Entries for node:util parseArgs, by the command's flags. */
  get parseOptions(): Record<string, { type: 'string' | 'boolean' }> {
    return Object.fromEntries(this.options.map((o) => [this.flagOf(o.flag), { type: o.type }]));
  }

  /** The values of `values` (the command's flags) by table flag, for readDetectionSettings. */
  tableValues(values: OptionValues): OptionValues {
    const out: OptionValues = {};
    for (const o of this.options) {
      const v = values[this.flagOf(o.flag)];
      if (v !== undefined) out[o.flag] = v;
    }
    return out;
  }

  /** `--forest-seed must ...`: an OptionError's text with the option as this command spells it. */
  describe(error: OptionError): string {
    return describeOptionError(`--${this.flagOf(flagOf(error.option))}`, error.detail);
  }

  /** Help rows of these table flags (all of the set's in `group`, when a group is given), in table order. */
  rows(which: DetectionGroup | readonly string[]): HelpRow[] {
    const chosen = typeof which === 'string' ? this.options.filter((o) => o.group === which) : this.options.filter((o) => which.includes(o.flag));
    return chosen.map((o) => ({
      option: `--${this.flagOf(o.flag)}${o.value !== undefined ? ` ${o.value}` : ''}`,
      text: o.help,
      default: this.#defaults[o.flag] ?? o.default,
    }));
  }
}
