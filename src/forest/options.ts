/**
 * Forest options: defaults and validation shared by both engines. Everything a user can
 * pass is checked here, in TypeScript, so that nothing invalid ever reaches an engine
 * (an AssemblyScript abort must not be reachable from user input).
 */

export type EngineName = 'wasm' | 'ts';

export interface ForestOptions {
  /** Base input dimensions: values per record (1..30). */
  dimensions: number;
  /** Records per shingle (1..30); the forest shingles internally when > 1. */
  shingleSize?: number;
  /** 1..1000, default 50. */
  numberOfTrees?: number;
  /** Points kept per tree (10..4096), default 256. */
  sampleSize?: number;
  /** Default 1/(10·sampleSize); 0 keeps a uniform sample. */
  timeDecay?: number;
  /** Updates before scores are produced; default max(1, floor(sampleSize/4)). */
  outputAfter?: number;
  /** Java long semantics: an integer, a bigint or a decimal string. Default 0. */
  randomSeed?: number | bigint | string;
  /** 'wasm' (default) or 'ts'. */
  engine?: EngineName;
}

/** A fully resolved configuration; what engines and snapshots carry. */
export interface ForestConfig {
  baseDimensions: number;
  shingleSize: number;
  dimensions: number;
  numberOfTrees: number;
  sampleSize: number;
  timeDecay: number;
  outputAfter: number;
  /** The seed as a Java long, split into signed hi and lo 32-bit words. */
  seedHi: number;
  seedLo: number;
}

export const LIMITS = {
  dimensions: [1, 30],
  shingleSize: [1, 30],
  numberOfTrees: [1, 1000],
  sampleSize: [10, 4096],
} as const;

/** Largest value magnitude accepted: beyond it f32 box widths can overflow to infinity. */
export const MAX_ABS_VALUE = 1e38;

/**
 * An error whose message is `<option> <detail>`, with both as fields, so an interface can
 * print the option in its own spelling (`--trees`, `RCF_TREES`) without parsing the message.
 */
function badOption(ctor: RangeErrorConstructor | TypeErrorConstructor, option: string, detail: string): Error {
  return Object.assign(new ctor(`${option} ${detail}`), { option, detail });
}

function integerIn(name: string, value: unknown, [lo, hi]: readonly [number, number]): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw badOption(TypeError, name, `must be an integer, got ${describe(value)}`);
  }
  if (value < lo || value > hi) throw badOption(RangeError, name, `must be between ${lo} and ${hi}, got ${value}`);
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Splits a Java long given as number, bigint or decimal string into signed 32-bit words. */
export function seedWords(seed: number | bigint | string): { hi: number; lo: number } {
  let big: bigint;
  if (typeof seed === 'bigint') big = seed;
  else if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw badOption(TypeError, 'randomSeed', `must be a safe integer (use a bigint or decimal string beyond 2^53), got ${seed}`);
    }
    big = BigInt(seed);
  } else if (typeof seed === 'string' && /^[+-]?\d+$/.test(seed.trim())) big = BigInt(seed.trim());
  else throw badOption(TypeError, 'randomSeed', `must be an integer, bigint or decimal string, got ${describe(seed)}`);
  if (big < INT64_MIN || big > INT64_MAX) throw badOption(RangeError, 'randomSeed', `must fit a signed 64-bit integer, got ${big}`);
  const u = BigInt.asUintN(64, big);
  return { hi: Number(u >> 32n) | 0, lo: Number(u & 0xffffffffn) | 0 };
}

/** The seed of a config back as a bigint (Java long). */
export function seedOf(config: ForestConfig): bigint {
  return (BigInt(config.seedHi) << 32n) | BigInt(config.seedLo >>> 0);
}

export function resolveOptions(options: ForestOptions): ForestConfig & { engine: EngineName } {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const known = new Set(['dimensions', 'shingleSize', 'numberOfTrees', 'sampleSize', 'timeDecay', 'outputAfter', 'randomSeed', 'engine']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`unknown option ${JSON.stringify(key)}`);
  }
  const b = integerIn('dimensions', options.dimensions, LIMITS.dimensions);
  const k = integerIn('shingleSize', options.shingleSize ?? 1, LIMITS.shingleSize);
  const T = integerIn('numberOfTrees', options.numberOfTrees ?? 50, LIMITS.numberOfTrees);
  const S = integerIn('sampleSize', options.sampleSize ?? 256, LIMITS.sampleSize);
  let timeDecay = 1.0 / (10.0 * S);
  if (options.timeDecay !== undefined) {
    const v = options.timeDecay;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badOption(TypeError, 'timeDecay', `must be a finite number, got ${describe(v)}`);
    if (v < 0) throw badOption(RangeError, 'timeDecay', `must be >= 0, got ${v}`);
    timeDecay = v;
  }
  let outputAfter = Math.max(1, Math.trunc(S * 0.25));
  if (options.outputAfter !== undefined) outputAfter = integerIn('outputAfter', options.outputAfter, [1, Number.MAX_SAFE_INTEGER]);
  const engine = options.engine ?? 'wasm';
  if (engine !== 'wasm' && engine !== 'ts') throw badOption(TypeError, 'engine', `must be "wasm" or "ts", got ${describe(engine)}`);
  const { hi, lo } = seedWords(options.randomSeed ?? 0);
  return {
    baseDimensions: b,
    shingleSize: k,
    dimensions: b * k,
    numberOfTrees: T,
    sampleSize: S,
    timeDecay,
    outputAfter,
    seedHi: hi,
    seedLo: lo,
    engine,
  };
}

/**
 * Checks `count` records of b values starting at `offset`; throws naming the first bad
 * value. Values must be finite with |F(v)| <= 1e38.
 */
export function validateValues(values: ArrayLike<number>, offset: number, count: number, b: number, what: string): void {
  const end = offset + count * b;
  for (let i = offset; i < end; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !(Math.abs(Math.fround(v)) <= MAX_ABS_VALUE)) {
      const rec = Math.floor((i - offset) / b);
      const where = count > 1 ? `${what}[${rec}][${(i - offset) % b}]` : `${what}[${(i - offset) % b}]`;
      if (typeof v !== 'number') throw new TypeError(`${where} must be a number, got ${describe(v)}`);
      if (Number.isNaN(v)) throw new RangeError(`${where} is NaN`);
      if (!Number.isFinite(v)) throw new RangeError(`${where} is not finite (${v})`);
      throw new RangeError(`${where} = ${v} exceeds the float32-safe range |v| <= 1e38`);
    }
  }
}
