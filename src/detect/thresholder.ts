/**
 * AWS's ThresholdedRandomCutForest (TRCF) grading, transform NONE, STANDARD mode, as
 * specified in rcf-algorithm.md §8: the 10-record initial segment, the three discounted
 * "Deviation" statistics, the adaptive threshold and grade, and the NOISE filter (§8.6.1).
 * The phase-2 corrections (§8.6.2) are not implemented, so with shingleSize > 1 our
 * positives are a superset of the library's (see §8.6 for the measured gap).
 *
 * Used as a Grader: the detector scores each record with the forest, calls grade(), then
 * updates the forest. TRCF itself holds back its first 10 records and feeds them to the
 * forest at the 10th call; queries never change a forest, so feeding every record as it
 * comes leaves the forest in the same state, and only the reported score differs (TRCF
 * reports 0 for those 10 records, which matters only when outputAfter < 10).
 *
 * All state lives in plain numeric fields so saveState()/restoreState() round-trip it
 * exactly (f64 values are copied bit for bit; the counters are small integers).
 */
import type { GradeResult, Grader } from './grader.js';

/** Records TRCF holds back before scoring (its "startNormalization"). */
const INITIAL_SEGMENT = 10;
/** Scored records before the threshold leaves its initial value ("minimumScores"). */
const MINIMUM_SCORES = 10;
const ANOMALY_RATE = 0.01;
const Z_FACTOR = 3.0;
const INITIAL_THRESHOLD = 1.5;
/** The lower, "absolute" threshold: fixed while autoAdjust is off. */
const LOWER_THRESHOLD = 0.8;
/** The primary statistic sees min(score, this). */
const PRIMARY_SCORE_CAP = 2.0;
const SQRT2 = Math.sqrt(2.0);
/** NOISE filter: a candidate shingle with every |value| <= this is never graded. */
const NOISE_LEVEL = 0.001;

/** State layout version in saveState(). */
const STATE_VERSION = 1;

/** A discounted mean and deviation (the library's "Deviation"), §8.3. */
class DiscountedStatistic {
  weight = 0;
  sum = 0;
  sumSquares = 0;
  count = 0;

  constructor(readonly discount: number) {}

  update(v: number): void {
    const f = 1 - this.discount;
    this.sum = this.sum * f + v;
    this.sumSquares = this.sumSquares * f + v * v;
    this.weight = this.weight * f + 1.0;
    this.count = this.count + 1;
  }

  get mean(): number {
    return this.weight <= 0 ? 0 : this.sum / this.weight;
  }

  get deviation(): number {
    if (this.weight <= 0) return 0;
    const mu = this.sum / this.weight;
    const a = this.sumSquares / this.weight - mu * mu;
    return a > 0 ? Math.sqrt(a) : 0;
  }
}

export interface TrcfThresholderOptions {
  /** Values per record (b). */
  dimensions: number;
  /** Records per shingle (k), as in the forest. Default 1. */
  shingleSize?: number;
  /** The forest's timeDecay λ; default 1/(10·sampleSize). */
  timeDecay?: number;
  /** Used only for the default timeDecay. Default 256. */
  sampleSize?: number;
}

export class TrcfThresholder implements Grader {
  readonly dimensions: number;
  readonly shingleSize: number;
  readonly timeDecay: number;
  /** n: records seen (TRCF process calls). */
  calls = 0;
  /** n_T: scores fed to the statistics. */
  scoredCount = 0;
  /** Last score, used for the secondary statistic when shingleSize > 1; stays 0 for k = 1. */
  lastScore = 0;
  readonly primary: DiscountedStatistic;
  readonly secondary: DiscountedStatistic;
  readonly tail: DiscountedStatistic;
  /** The last k records as f32 values, oldest first (the candidate shingle for the NOISE filter). */
  readonly shingle: Float64Array;
  readonly #result: GradeResult = { anomaly: false, grade: 0, threshold: 0, score: undefined };

  constructor(options: TrcfThresholderOptions) {
    const b = options.dimensions;
    const k = options.shingleSize ?? 1;
    if (!Number.isInteger(b) || b < 1) throw new RangeError(`dimensions must be a positive integer, got ${String(b)}`);
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`shingleSize must be a positive integer, got ${String(k)}`);
    const lambda = options.timeDecay ?? 1.0 / (10.0 * (options.sampleSize ?? 256));
    if (!(lambda >= 0 && Number.isFinite(lambda))) throw new RangeError(`timeDecay must be finite and >= 0, got ${String(lambda)}`);
    this.dimensions = b;
    this.shingleSize = k;
    this.timeDecay = lambda;
    this.primary = new DiscountedStatistic(lambda);
    this.secondary = new DiscountedStatistic(ANOMALY_RATE);
    this.tail = new DiscountedStatistic(lambda / 2);
    this.shingle = new Float64Array(b * k);
  }

  grade(score: number, values: ArrayLike<number>, ready: boolean): GradeResult {
    const r = this.#result;
    this.#shift(values);
    const n = this.calls++;
    r.anomaly = false;
    r.grade = 0;
    r.threshold = 0;
    if (n < INITIAL_SEGMENT) {
      r.score = 0;
      return r;
    }
    r.score = undefined;
    // §8.2 step 2: an unready forest scores 0 and the statistics are left alone.
    if (!ready || score === 0) return r;

    const k = this.shingleSize;
    this.#evaluate(score, r);
    if (r.grade > 0 && this.#isNoise()) r.grade = 0;
    // Without the phase-2 substitution the corrected score is the score itself.
    this.#update(Math.min(score, PRIMARY_SCORE_CAP), score - this.lastScore);
    if (k > 1) this.lastScore = score;
    r.anomaly = r.grade > 0;
    return r;
  }

  /** §8.4 evaluate(score): writes threshold and grade into r. */
  #evaluate(score: number, r: GradeResult): void {
    const nT = this.scoredCount;
    const P = this.primary;
    const Sd = this.secondary;
    const ready = nT >= MINIMUM_SCORES && Sd.count >= MINIMUM_SCORES;
    const f = nT < MINIMUM_SCORES ? 0 : nT > 2 * MINIMUM_SCORES ? 1 : (nT - MINIMUM_SCORES) / MINIMUM_SCORES;
    const z = Z_FACTOR;
    let longTerm: number;
    if (this.shingleSize === 1) {
      longTerm = Math.min(SQRT2 * this.tail.deviation, P.deviation);
    } else {
      longTerm = 0.5 * Math.min(P.deviation, Math.max(Sd.deviation, SQRT2 * this.tail.deviation)) + (1 - 0.5) * Sd.deviation;
    }
    const sd = (z - 1) * longTerm + P.deviation;
    let threshold: number;
    if (!ready) threshold = Math.max(INITIAL_THRESHOLD, LOWER_THRESHOLD);
    else threshold = Math.max(LOWER_THRESHOLD, f * (P.mean + sd) + (1 - f) * INITIAL_THRESHOLD);

    if (score < threshold || threshold <= 0) {
      r.threshold = threshold;
      r.grade = 0;
      return;
    }
    let surprise: number;
    if (ready) {
      let tf = 2 * z;
      const dv = sd / z;
      if (dv > 0) tf = Math.min(z, (score - threshold) / dv);
      surprise = Math.max(0, Math.fround(tf / z));
    } else {
      surprise = Math.fround(Math.min(1, Math.max(0, (score - LOWER_THRESHOLD) / LOWER_THRESHOLD)));
    }
    const g = Math.min(Math.floor(surprise * 20) / 16, 1.0);
    r.threshold = g === 0 ? score : threshold;
    r.grade = Math.fround(g);
  }

  /** §8.5 update(primary, secondary). */
  #update(primary: number, secondary: number): void {
    const gap = this.primary.mean - primary;
    if (gap > 0) this.tail.update(gap);
    this.primary.update(primary);
    this.secondary.update(secondary);
    this.scoredCount++;
  }

  /** Appends a record to the candidate shingle, converted as the forest converts it (f32). */
  #shift(values: ArrayLike<number>): void {
    const b = this.dimensions;
    const s = this.shingle;
    if (s.length > b) s.copyWithin(0, b);
    const base = s.length - b;
    for (let i = 0; i < b; i++) s[base + i] = Math.fround(values[i]!);
  }

  #isNoise(): boolean {
    const s = this.shingle;
    for (let i = 0; i < s.length; i++) if (!(Math.abs(s[i]!) <= NOISE_LEVEL)) return false;
    return true;
  }

  /**
   * Every field as f64s: [version, dimensions, shingleSize, timeDecay, calls, scoredCount,
   * lastScore, then per statistic (primary, secondary, tail): discount, weight, sum,
   * sumSquares, count, then the shingle (dimensions × shingleSize values)].
   */
  saveState(): Float64Array {
    const stats = [this.primary, this.secondary, this.tail];
    const out = new Float64Array(7 + 5 * stats.length + this.shingle.length);
    out.set([STATE_VERSION, this.dimensions, this.shingleSize, this.timeDecay, this.calls, this.scoredCount, this.lastScore]);
    let o = 7;
    for (const s of stats) {
      out[o++] = s.discount;
      out[o++] = s.weight;
      out[o++] = s.sum;
      out[o++] = s.sumSquares;
      out[o++] = s.count;
    }
    out.set(this.shingle, o);
    return out;
  }

  static restoreState(state: ArrayLike<number>): TrcfThresholder {
    if (state.length < 7 || state[0] !== STATE_VERSION) {
      throw new RangeError(`not a TrcfThresholder state (version ${String(state[0])}, expected ${STATE_VERSION})`);
    }
    const t = new TrcfThresholder({ dimensions: state[1]!, shingleSize: state[2]!, timeDecay: state[3]! });
    const expected = 7 + 15 + t.shingle.length;
    if (state.length !== expected) throw new RangeError(`TrcfThresholder state has ${state.length} values, expected ${expected}`);
    t.calls = state[4]!;
    t.scoredCount = state[5]!;
    t.lastScore = state[6]!;
    let o = 7;
    for (const s of [t.primary, t.secondary, t.tail]) {
      if (state[o] !== s.discount) throw new RangeError('TrcfThresholder state: discount does not match its timeDecay');
      o++;
      s.weight = state[o++]!;
      s.sum = state[o++]!;
      s.sumSquares = state[o++]!;
      s.count = state[o++]!;
    }
    for (let i = 0; i < t.shingle.length; i++) t.shingle[i] = state[o + i]!;
    return t;
  }
}
