/**
 * The quality grader behind `--threshold auto`: turns a forest's raw anomaly scores into
 * an anomaly signal in [0, 1] that means the same thing on very different streams, and
 * raises one alarm per incident. Not AWS's algorithm (that is `thresholder.ts`); how it
 * differs, and what each part bought on NAB, is in docs/quality.md.
 *
 * Per ready record:
 * 1. Short-term score: the mean of the last `shortWindow` scores, blended with the newest
 *    score (weight `latestWeight`). One noisy score is weak evidence, a few high scores in
 *    a row are strong; the extra weight on the newest makes an alarm land on the record
 *    that caused it rather than on the one after.
 * 2. Its likelihood: the short-term score is compared with the long-run distribution of
 *    short-term scores (an exponentially weighted mean and deviation, horizon
 *    `longHorizon`), z = (short - mean) / deviation, and the evidence is e = -log10 Q(z),
 *    Q the standard normal upper tail: e = 6 means "a one-in-a-million short-term score"
 *    for this stream, whatever its raw score scale. The deviation has a floor relative to
 *    the mean: RCF scores are heavy-tailed, and on quiet streams the plain Gaussian tail
 *    would call ordinary noise extremes one-in-a-million. Level shifts are adapted to
 *    twice: the forest learns the new level, and the statistics absorb the raised scores.
 * 3. Grade: 0.5 * e / alarmLevel up to the alarm level (0.5), then rising twice as fast to
 *    1 at e = 1.5 * alarmLevel, so a clear incident grades near 1.
 * 4. Alarm: e >= alarmLevel, unless an alarm was raised less than `suppression` records
 *    ago; inside that period the grade is 0 (the incident is already reported).
 *
 * O(shortWindow) per record, no look-ahead, deterministic. All state is plain numbers, so
 * saveState()/restoreState() continue a stream exactly.
 */
import type { ForestOptions } from '../forest/options.js';
import type { GradeResult, Grader } from './grader.js';

export interface QualityGraderOptions {
  /** Scores averaged into the short-term score. Default 5. */
  shortWindow?: number;
  /** Weight of the newest score against the short-window mean. Default 0.1. */
  latestWeight?: number;
  /** Horizon (records) of the long-run statistics; equal weights until reached. Default 4000. */
  longHorizon?: number;
  /** Ready records that only feed the statistics before grading starts. Default 100. */
  warmup?: number;
  /** Alarm when -log10 of the tail probability reaches this (grade 0.5). Default 6. */
  alarmLevel?: number;
  /** Records after an alarm during which further alarms are suppressed. Default 200. */
  suppression?: number;
  /**
   * Floor of the long-run deviation as a fraction of the long-run mean. Default 0.25: with
   * alarmLevel 6 an alarm needs a short-term score at least ~2.2 times its usual level, so
   * the rare extremes of plain noise (a 3-sigma value scores ~3x the mean for one record)
   * do not alarm.
   */
  minRelativeDeviation?: number;
  /** Absolute floor of the long-run deviation, in score units. Default 0.01. */
  minDeviation?: number;
}

/**
 * Recommended forest options for quality mode (pass with `dimensions`). They are AWS's
 * defaults, on purpose: on NAB (docs/quality.md) shingle 4 or 8, 100 or 200 trees,
 * sampleSize 512 and a slower timeDecay all scored the same or worse with this grader,
 * so the quality comes from the grading, and the forest stays the one AWS users know.
 */
export const QUALITY_FOREST_DEFAULTS = Object.freeze({
  numberOfTrees: 50,
  sampleSize: 256,
  shingleSize: 1,
  timeDecay: 1 / (10 * 256),
} satisfies Omit<ForestOptions, 'dimensions'>);

export const QUALITY_GRADER_DEFAULTS: Readonly<Required<QualityGraderOptions>> = Object.freeze({
  shortWindow: 5,
  latestWeight: 0.1,
  longHorizon: 4000,
  warmup: 100,
  alarmLevel: 6,
  suppression: 200,
  minRelativeDeviation: 0.25,
  minDeviation: 0.01,
});

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * ln Q(z), Q the standard normal upper tail, accurate far into the tail (where 1 - Phi(z)
 * would round to 0). Below z = 3: Q = erfc(z/sqrt2)/2 with erf from its Taylor series
 * (converges fast there). From 3 on: Q = phi(z)/R(z), R the continued fraction
 * z + 1/(z + 2/(z + 3/(z + ...))), evaluated bottom-up.
 */
export function logNormalTail(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  if (z < 3) {
    if (z < -8) return 0; // Q = 1 to double precision
    const x = z / Math.SQRT2;
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.log(0.5 * (1 - TWO_OVER_SQRT_PI * sum));
  }
  if (z === Infinity) return -Infinity;
  let fraction = z;
  for (let k = 80; k >= 1; k--) fraction = z + k / fraction;
  return -0.5 * z * z - LOG_SQRT_2PI - Math.log(fraction);
}

/** -log10 Q(z): the evidence of a z-score, 0 for z far below the mean. */
export function tailEvidence(z: number): number {
  return Math.max(0, -logNormalTail(z) / Math.LN10);
}

/** Evidence to grade: 0.5 at the alarm level, 1 from 1.5 times it on (piecewise linear, monotone). */
function gradeOf(evidence: number, level: number): number {
  if (evidence <= level) return (0.5 * evidence) / level;
  return Math.min(1, 0.5 + (evidence - level) / level);
}

/** The z whose evidence is `level` (bisection: monotone, and done once per grader). */
function zForEvidence(level: number): number {
  let lo = -10;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (tailEvidence(mid) < level) lo = mid;
    else hi = mid;
  }
  return hi;
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer between ${min} and ${max}, got ${String(value)}`);
  }
  return value;
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

/** State layout version in saveState(). */
const STATE_VERSION = 2;
/** Values before the short-window ring in the state array. */
const STATE_HEADER = 15;

export class QualityGrader implements Grader {
  readonly shortWindow: number;
  readonly latestWeight: number;
  readonly longHorizon: number;
  readonly warmup: number;
  readonly alarmLevel: number;
  readonly suppression: number;
  readonly minRelativeDeviation: number;
  readonly minDeviation: number;
  /** z at which the evidence reaches alarmLevel. */
  readonly alarmZ: number;

  /** Ready scores seen. */
  scored = 0;
  /** Graded records since the last alarm (Infinity before the first). */
  sinceAlarm = Infinity;
  /** Long-run mean and variance of the short-term score. */
  mean = 0;
  variance = 0;
  /** Last shortWindow scores, a ring; ringNext is the slot the next score goes to. */
  readonly ring: Float64Array;
  ringNext = 0;
  /** The evidence (-log10 tail probability) of the last graded record. */
  evidence = 0;

  readonly #result: GradeResult = { anomaly: false, grade: 0, threshold: 0 };

  constructor(options: QualityGraderOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const known = new Set(Object.keys(QUALITY_GRADER_DEFAULTS));
    for (const key of Object.keys(options)) {
      if (!known.has(key)) throw new TypeError(`unknown quality grader option ${JSON.stringify(key)}`);
    }
    const o = { ...QUALITY_GRADER_DEFAULTS, ...options };
    this.shortWindow = integerIn('shortWindow', o.shortWindow, 1, 1000);
    if (typeof o.latestWeight !== 'number' || !(o.latestWeight >= 0 && o.latestWeight <= 1)) {
      throw new RangeError(`latestWeight must be a number between 0 and 1, got ${String(o.latestWeight)}`);
    }
    this.latestWeight = o.latestWeight;
    this.longHorizon = integerIn('longHorizon', o.longHorizon, 1, 1e9);
    this.warmup = integerIn('warmup', o.warmup, 1, 1e9);
    this.suppression = integerIn('suppression', o.suppression, 0, 1e9);
    this.alarmLevel = positive('alarmLevel', o.alarmLevel);
    if (this.alarmLevel > 300) throw new RangeError(`alarmLevel must be <= 300, got ${this.alarmLevel}`);
    this.minDeviation = positive('minDeviation', o.minDeviation);
    if (typeof o.minRelativeDeviation !== 'number' || !(o.minRelativeDeviation >= 0) || !Number.isFinite(o.minRelativeDeviation)) {
      throw new RangeError(`minRelativeDeviation must be a finite number >= 0, got ${String(o.minRelativeDeviation)}`);
    }
    this.minRelativeDeviation = o.minRelativeDeviation;
    this.alarmZ = zForEvidence(this.alarmLevel);
    this.ring = new Float64Array(this.shortWindow);
  }

  /** The options this grader was made with (all of them, defaults filled in). */
  get options(): Required<QualityGraderOptions> {
    return {
      shortWindow: this.shortWindow,
      latestWeight: this.latestWeight,
      longHorizon: this.longHorizon,
      warmup: this.warmup,
      alarmLevel: this.alarmLevel,
      suppression: this.suppression,
      minRelativeDeviation: this.minRelativeDeviation,
      minDeviation: this.minDeviation,
    };
  }

  grade(score: number, _values: ArrayLike<number>, ready: boolean): GradeResult {
    const r = this.#result;
    r.anomaly = false;
    r.grade = 0;
    r.threshold = 0;
    this.evidence = 0;
    // An unready forest scores 0; such records carry no information about the stream.
    if (!ready || !(score > 0) || !Number.isFinite(score)) return r;

    const m = this.shortWindow;
    this.ring[this.ringNext] = score;
    this.ringNext = this.ringNext + 1 === m ? 0 : this.ringNext + 1;
    this.scored++;
    const filled = Math.min(this.scored, m);
    // Oldest first, so the sum (and the state after a restore) never depends on drift.
    let sum = 0;
    for (let j = filled; j >= 1; j--) sum += this.ring[(this.ringNext - j + m) % m]!;
    const w = this.latestWeight;
    const short = ((1 - w) * sum) / filled + w * score;

    if (this.scored > this.warmup) {
      const deviation = Math.max(Math.sqrt(this.variance), this.minRelativeDeviation * Math.abs(this.mean), this.minDeviation);
      const evidence = tailEvidence((short - this.mean) / deviation);
      this.evidence = evidence;
      // The score at which this record's short-term score reaches the alarm level.
      const others = ((1 - w) * (sum - score)) / filled;
      r.threshold = Math.max(0, (this.mean + this.alarmZ * deviation - others) / ((1 - w) / filled + w));
      this.sinceAlarm++;
      if (this.sinceAlarm > this.suppression) {
        r.grade = gradeOf(evidence, this.alarmLevel);
        if (evidence >= this.alarmLevel) {
          r.anomaly = true;
          this.sinceAlarm = 0;
        }
      }
    }
    this.#learn(short);
    return r;
  }

  /** Exponentially weighted mean and variance (equal weights until longHorizon records). */
  #learn(x: number): void {
    const w = this.scored < this.longHorizon ? 1 / this.scored : 1 / this.longHorizon;
    const d = x - this.mean;
    this.mean += w * d;
    this.variance = (1 - w) * (this.variance + w * d * d);
  }

  /**
   * [version, shortWindow, latestWeight, longHorizon, warmup, alarmLevel, suppression,
   * minRelativeDeviation, minDeviation, scored, sinceAlarm (-1 for none yet), mean,
   * variance, ringNext, evidence, ring...].
   */
  saveState(): Float64Array {
    const out = new Float64Array(STATE_HEADER + this.shortWindow);
    out.set([
      STATE_VERSION,
      this.shortWindow,
      this.latestWeight,
      this.longHorizon,
      this.warmup,
      this.alarmLevel,
      this.suppression,
      this.minRelativeDeviation,
      this.minDeviation,
      this.scored,
      this.sinceAlarm === Infinity ? -1 : this.sinceAlarm,
      this.mean,
      this.variance,
      this.ringNext,
      this.evidence,
    ]);
    out.set(this.ring, STATE_HEADER);
    return out;
  }

  static restoreState(state: ArrayLike<number>): QualityGrader {
    if (state.length < STATE_HEADER || state[0] !== STATE_VERSION) {
      throw new RangeError(`not a QualityGrader state (version ${String(state[0])}, expected ${STATE_VERSION})`);
    }
    const g = new QualityGrader({
      shortWindow: state[1]!,
      latestWeight: state[2]!,
      longHorizon: state[3]!,
      warmup: state[4]!,
      alarmLevel: state[5]!,
      suppression: state[6]!,
      minRelativeDeviation: state[7]!,
      minDeviation: state[8]!,
    });
    if (state.length !== STATE_HEADER + g.shortWindow) {
      throw new RangeError(`QualityGrader state has ${state.length} values, expected ${STATE_HEADER + g.shortWindow}`);
    }
    const scored = state[9]!;
    const since = state[10]!;
    const next = state[13]!;
    if (!Number.isInteger(scored) || scored < 0 || !(since === -1 || (Number.isInteger(since) && since >= 0))) {
      throw new RangeError('QualityGrader state: bad counters');
    }
    if (!Number.isInteger(next) || next < 0 || next >= g.shortWindow) throw new RangeError('QualityGrader state: bad ring position');
    g.scored = scored;
    g.sinceAlarm = since === -1 ? Infinity : since;
    g.mean = state[11]!;
    g.variance = state[12]!;
    g.ringNext = next;
    g.evidence = state[14]!;
    for (let j = 0; j < g.shortWindow; j++) g.ring[j] = state[STATE_HEADER + j]!;
    return g;
  }
}
