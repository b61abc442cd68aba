/**
 * Detectors: forests plus threshold strategies, run over batches of parsed records.
 *
 * Per record the protocol is AWS's: score, then (when explanations are wanted)
 * attribution, then grade, then update. Without attribution a single model scores whole
 * batches with `forest.process()` (score then update per point, the same results) and
 * grades afterwards: a grader sees only (score, values, ready, time), so grading after the batch
 * gives exactly what grading between score and update would.
 *
 * `Detector` runs one model; `KeyedDetector` one model per key (e.g. per sensor), created
 * on first sight with a seed derived from the base seed and the key, and bounded by an
 * LRU of `maxKeys` models. Both expose their models (`entries()`, `insert()`), so a
 * snapshot can save and restore every forest and grader.
 */
import { createForestSync, loadKernel } from '../forest/create.js';
import type { Forest } from '../forest/forest.js';
import type { ForestConfig, ForestOptions } from '../forest/options.js';
import { seedWords } from '../forest/options.js';
import type { Grader } from './grader.js';

/** One forest and the grader fed by its scores. */
export interface Model {
  forest: Forest;
  grader: Grader;
}

/** Makes the grader of a new model; gets the forest's resolved configuration. */
export type GraderFactory = (config: Readonly<ForestConfig>) => Grader;

/**
 * Records in flight between the parser and the sinks, as columns so a batch costs no
 * per-record objects: the parser fills `values` (and `keys`), the detector the results.
 */
export class DetectionBatch {
  /** Records in the batch. */
  count = 0;
  /** Record i's values are values[i·dimensions .. (i+1)·dimensions). */
  readonly values: Float64Array;
  /** Model key per record (KeyedDetector only). */
  readonly keys: string[];
  /**
   * Timestamp per record, ms since the epoch (parseTimestamp()); NaN when the record has none.
   * Whoever fills `values` sets it: the column starts as NaN and is never reset by the detector.
   */
  readonly time: Float64Array;
  /** The score to report: the forest's, unless the grader redefines it. */
  readonly score: Float64Array;
  readonly grade: Float64Array;
  readonly threshold: Float64Array;
  /** 1 when the record is an anomaly. */
  readonly anomaly: Uint8Array;
  /** Attribution per record (dimensions × shingleSize values each, oldest block first), when requested. */
  readonly high: Float64Array | undefined;
  readonly low: Float64Array | undefined;

  constructor(
    readonly capacity: number,
    /** Values per record (the forest's base dimensions). */
    readonly dimensions: number,
    /** Attribution length per record (dimensions × shingleSize); 0 for none. */
    readonly attributionLength = 0,
  ) {
    this.values = new Float64Array(capacity * dimensions);
    this.keys = new Array<string>(capacity).fill('');
    this.time = new Float64Array(capacity).fill(Number.NaN);
    this.score = new Float64Array(capacity);
    this.grade = new Float64Array(capacity);
    this.threshold = new Float64Array(capacity);
    this.anomaly = new Uint8Array(capacity);
    this.high = attributionLength > 0 ? new Float64Array(capacity * attributionLength) : undefined;
    this.low = attributionLength > 0 ? new Float64Array(capacity * attributionLength) : undefined;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }
}

/** What the pipeline needs from either detector. */
export interface RecordDetector {
  /** Scores, grades and learns the batch's records in order, filling its result columns. */
  run(batch: DetectionBatch): void;
  /** Every model with its key ('' for a single-model Detector), least recently used first. */
  entries(): IterableIterator<[string, Model]>;
  /** Models held. */
  readonly size: number;
  /** Models dropped to respect maxKeys. */
  readonly evictions: number;
  dispose(): void;
}

export interface DetectorOptions {
  /** Forest options for every model (a KeyedDetector derives each model's seed from `randomSeed`). */
  forest: ForestOptions;
  grader: GraderFactory;
  /** Compute attribution for every record (for explanations); disables whole-batch scoring. */
  attribution?: boolean;
}

/** Runs record i of the batch through one model: score, attribution (if wanted), grade, update. */
function runEach(model: Model, batch: DetectionBatch, i: number, attribution: boolean, scratch: Float64Array): void {
  const { forest, grader } = model;
  const b = batch.dimensions;
  for (let d = 0; d < b; d++) scratch[d] = batch.values[i * b + d]!;
  const score = forest.score(scratch);
  if (attribution) {
    const D = batch.attributionLength;
    const a = forest.attribution(scratch);
    batch.high!.set(a.high, i * D);
    batch.low!.set(a.low, i * D);
  }
  // The forest reports 0 until ready, and only then is a score a real one.
  const ready = forest.isReady;
  record(batch, i, score, grader.grade(score, scratch, ready, batch.time[i]));
  forest.update(scratch);
}

function record(batch: DetectionBatch, i: number, score: number, g: ReturnType<Grader['grade']>): void {
  batch.score[i] = g.score ?? score;
  batch.grade[i] = g.grade;
  batch.threshold[i] = g.threshold;
  batch.anomaly[i] = g.anomaly ? 1 : 0;
}

function newModel(options: ForestOptions, grader: GraderFactory): Model {
  const forest = createForestSync(options);
  try {
    return { forest, grader: grader(forest.config) };
  } catch (error) {
    forest.dispose();
    throw error;
  }
}

async function kernelFor(options: ForestOptions): Promise<void> {
  // One compile per process; createForestSync then reuses it.
  if ((options.engine ?? 'wasm') === 'wasm') await loadKernel();
}

/** A single model for the whole stream. */
export class Detector implements RecordDetector {
  readonly attribution: boolean;
  #model: Model;
  readonly #scratch: Float64Array;

  static async create(options: DetectorOptions): Promise<Detector> {
    await kernelFor(options.forest);
    return new Detector(newModel(options.forest, options.grader), options.attribution ?? false);
  }

  /** Wraps an existing (e.g. restored) model. */
  constructor(model: Model, attribution = false) {
    this.#model = model;
    this.attribution = attribution;
    this.#scratch = new Float64Array(model.forest.config.baseDimensions);
  }

  get model(): Model {
    return this.#model;
  }

  get size(): number {
    return 1;
  }

  get evictions(): number {
    return 0;
  }

  run(batch: DetectionBatch): void {
    const model = this.#model;
    const n = batch.count;
    let i = 0;
    if (this.attribution) {
      for (; i < n; i++) runEach(model, batch, i, true, this.#scratch);
      return;
    }
    // Warm-up one by one, so each record knows whether its score was a real one.
    for (; i < n && !model.forest.isReady; i++) runEach(model, batch, i, false, this.#scratch);
    if (i === n) return;
    const b = batch.dimensions;
    const scores = batch.score.subarray(i, n);
    model.forest.process(batch.values.subarray(i * b, n * b), scores);
    const grader = model.grader;
    const values = this.#scratch;
    for (; i < n; i++) {
      for (let d = 0; d < b; d++) values[d] = batch.values[i * b + d]!;
      record(batch, i, batch.score[i]!, grader.grade(batch.score[i]!, values, true, batch.time[i]));
    }
  }

  *entries(): IterableIterator<[string, Model]> {
    yield ['', this.#model];
  }

  /** Replaces the model (e.g. with a restored one); the old one is disposed. */
  insert(_key: string, model: Model): void {
    if (model === this.#model) return;
    this.#model.forest.dispose();
    this.#model = model;
  }

  dispose(): void {
    this.#model.forest.dispose();
  }
}

export interface KeyedDetectorOptions extends DetectorOptions {
  /** Most models kept; the least recently used is dropped beyond it. Default 10,000. */
  maxKeys?: number;
  /** Told about each eviction (after the model is disposed). */
  onEvict?: (key: string) => void;
}

export const DEFAULT_MAX_KEYS = 10_000;

/** One model per key, created on first sight and kept in an LRU. */
export class KeyedDetector implements RecordDetector {
  readonly maxKeys: number;
  readonly attribution: boolean;
  readonly #forestOptions: ForestOptions;
  readonly #grader: GraderFactory;
  readonly #baseSeed: bigint;
  readonly #onEvict: ((key: string) => void) | undefined;
  /** Map iteration order is insertion order: re-inserting on use keeps it least-recent first. */
  readonly #models = new Map<string, Model>();
  readonly #scratch: Float64Array;
  #evictions = 0;
  #lastKey: string | undefined;

  static async create(options: KeyedDetectorOptions): Promise<KeyedDetector> {
    await kernelFor(options.forest);
    return new KeyedDetector(options);
  }

  /** Needs the WASM kernel already loaded (see create()) when the engine is wasm. */
  constructor(options: KeyedDetectorOptions) {
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be a positive integer, got ${String(maxKeys)}`);
    this.maxKeys = maxKeys;
    this.attribution = options.attribution ?? false;
    this.#forestOptions = options.forest;
    this.#grader = options.grader;
    const { hi, lo } = seedWords(options.forest.randomSeed ?? 0);
    this.#baseSeed = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo >>> 0));
    this.#onEvict = options.onEvict;
    this.#scratch = new Float64Array(options.forest.dimensions);
    // Fail on bad options now, not at the first record.
    newModel(options.forest, options.grader).forest.dispose();
  }

  get size(): number {
    return this.#models.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  /** The model of `key`, or undefined; does not count as a use. */
  get(key: string): Model | undefined {
    return this.#models.get(key);
  }

  /** The seed the model of `key` gets. */
  seedFor(key: string): bigint {
    return keySeed(this.#baseSeed, key);
  }

  run(batch: DetectionBatch): void {
    for (let i = 0; i < batch.count; i++) runEach(this.#use(batch.keys[i]!), batch, i, this.attribution, this.#scratch);
  }

  #use(key: string): Model {
    const models = this.#models;
    let model = models.get(key);
    if (model !== undefined) {
      if (key !== this.#lastKey) {
        models.delete(key);
        models.set(key, model);
      }
    } else {
      model = newModel({ ...this.#forestOptions, randomSeed: this.seedFor(key) }, this.#grader);
      this.insert(key, model);
    }
    this.#lastKey = key;
    return model;
  }

  entries(): IterableIterator<[string, Model]> {
    return this.#models.entries();
  }

  /** Adds a model (e.g. restored from a snapshot) as the most recently used, evicting if full. */
  insert(key: string, model: Model): void {
    const models = this.#models;
    const old = models.get(key);
    if (old !== undefined) {
      models.delete(key);
      if (old !== model) old.forest.dispose();
    }
    while (models.size >= this.maxKeys) {
      const [oldestKey, oldest] = models.entries().next().value as [string, Model];
      models.delete(oldestKey);
      oldest.forest.dispose();
      this.#evictions++;
      if (this.#lastKey === oldestKey) this.#lastKey = undefined;
      this.#onEvict?.(oldestKey);
    }
    models.set(key, model);
  }

  dispose(): void {
    for (const model of this.#models.values()) model.forest.dispose();
    this.#models.clear();
    this.#lastKey = undefined;
  }
}

const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

/** 64-bit FNV-1a of bytes (unsigned). */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV_OFFSET_BASIS;
  for (let i = 0; i < bytes.length; i++) h = ((h ^ BigInt(bytes[i]!)) * FNV_PRIME) & MASK64;
  return h;
}

/** SplitMix64's finaliser: spreads every input bit over the whole word. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * The forest seed of a key's model: SplitMix64-finalise(FNV-1a-64(UTF-8 key) XOR base seed),
 * as a signed 64-bit (Java long) value. Deterministic across runs and engines. The mixing
 * step keeps seeds of similar keys and neighbouring base seeds unrelated: a plain XOR would
 * let two (seed, key) pairs cancel into the same forest.
 */
export function keySeed(baseSeed: bigint, key: string): bigint {
  const h = fnv1a64(Buffer.from(key, 'utf8'));
  return BigInt.asIntN(64, mix64(h ^ BigInt.asUintN(64, baseSeed)));
}
