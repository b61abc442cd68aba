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
 * 4. Alarm: e >= alarmLevel, unless the last alarm is less than `suppression` records ago
 *    or, when records carry timestamps, less than `suppressionTime` ago; inside that period
 *    the grade is 0 (the incident is already reported). Time, not records, is what an
 *    incident lasts: 100 records are 8 hours of 5-minute data but 4 days of hourly data.
 * 5. Time-of-day context (timestamped records only): the day is cut into `seasonalSlots`
 *    slots, and each slot keeps an exponentially weighted average (over `seasonalDays`
 *    days) of the highest short-term score it saw on each past day. Once a slot and its
 *    two neighbours have `seasonalMinDays` days of history, the baseline of step 2 is at
 *    least `seasonalFactor` times the largest of those daily peaks: something that happens
 *    every day at 03:00 stops being news after a few days, like the forest's own
 *    adaptation to a level shift. Timestamps are read as UTC time of day.
 * 6. Value context (timestamped records only): each slot also keeps, per field, an
 *    exponentially weighted mean of the values seen at that time of day (over
 *    `seasonalDays` days) and their mean absolute deviation. A record's contextual
 *    surprise is its largest |value - slot mean| / slot deviation over the fields; its
 *    short-term mean (shortWindow records) gets a likelihood of its own against its own
 *    history, as in step 2, and that evidence, less `contextMargin`, competes with the
 *    forest's. This finds what the forest cannot see: an ordinary value at the wrong time
 *    of day (the daily rise that does not happen, a holiday's low demand). The margin is
 *    there because two tests at one level alarm about twice as often on plain noise.
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
  /** Records after an alarm during which further alarms are suppressed. Default 100. */
  suppression?: number;
  /**
   * Milliseconds after an alarm during which further alarms are suppressed, for records with
   * a timestamp (both this and `suppression` must have passed). Default 24 hours: an
   * operational incident unfolds over hours, and one report a day per stream is what a
   * person on call reads; 0 turns it off.
   */
  suppressionTime?: number;
  /** Time-of-day slots of the seasonal context (timestamped records). Default 96 (15 minutes). */
  seasonalSlots?: number;
  /** Horizon, in days, of each slot's average daily peak. Default 30. */
  seasonalDays?: number;
  /** Days of history a slot (and its neighbours) needs before it counts. Default 3. */
  seasonalMinDays?: number;
  /**
   * The baseline is at least this times the slot's usual daily peak. Default 0.75; 0 turns
   * the seasonal context off.
   */
  seasonalFactor?: number;
  /**
   * The value-context evidence counts after subtracting this (so it alarms at
   * alarmLevel + contextMargin). Default 3; 1000 turns the value context off.
   */
  contextMargin?: number;
  /**
   * Floor of the long-run deviation as a fraction of the long-run mean. Default 0.25: with
   * alarmLevel 6 an alarm needs a short-term score at least ~2.2 times its usual level, so
   * the rare extremes of plain noise (a 3-sigma value scores ~3x the mean for one record)
   * do not alarm. (0.15 scores higher on NAB but alarms 13 times per 10,000 records of
   * Gaussian noise: docs/quality.md.)
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
  suppression: 100,
  suppressionTime: 24 * 3_600_000,
  minRelativeDeviation: 0.25,
  minDeviation: 0.01,
  seasonalSlots: 96,
  seasonalDays: 30,
  seasonalMinDays: 3,
  seasonalFactor: 0.75,
  contextMargin: 3,
});

const DAY_MS = 86_400_000;

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

/** State layout version in saveState(). Version 2 (no timestamps, no seasonal context) is still read. */
const STATE_VERSION = 3;
/** Values before the short-window ring in the state array. */
const STATE_HEADER = 27;
const V2_HEADER = 15;
/** Slot arrays kept per seasonal slot: average daily peak, its day, today's peak, days seen, records seen. */
const SLOT_ARRAYS = 5;

export class QualityGrader implements Grader {
  readonly shortWindow: number;
  readonly latestWeight: number;
  readonly longHorizon: number;
  readonly warmup: number;
  readonly alarmLevel: number;
  readonly suppression: number;
  readonly minRelativeDeviation: number;
  readonly minDeviation: number;
  readonly suppressionTime: number;
  readonly seasonalSlots: number;
  readonly seasonalDays: number;
  readonly seasonalMinDays: number;
  readonly seasonalFactor: number;
  readonly contextMargin: number;
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
  /** Timestamp (ms) of the last alarm; -Infinity before the first or without timestamps. */
  lastAlarmTime = -Infinity;
  /** Per seasonal slot: average daily peak of the short-term score, and days folded into it. */
  readonly slotPeak: Float64Array;
  readonly slotDays: Float64Array;
  /** Per slot: the day number (UTC days since epoch) being collected, -1 for none, and its peak so far. */
  readonly slotDay: Float64Array;
  readonly slotToday: Float64Array;
  /** Per slot: records seen (ready ones), for the weights of the value context. */
  readonly slotCount: Float64Array;
  /** Fields per record of the value context; 0 until the first timestamped record sets it. */
  contextDims = 0;
  /** Per slot and field (slot-major): mean value and mean absolute deviation at that time of day. */
  contextMean = new Float64Array(0);
  contextDev = new Float64Array(0);
  /** The contextual surprise's short-term ring and long-run statistics (as ring, mean, variance). */
  readonly contextRing: Float64Array;
  contextRingNext = 0;
  contextScored = 0;
  contextAverage = 0;
  contextVariance = 0;

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
    if (typeof o.suppressionTime !== 'number' || !(o.suppressionTime >= 0) || !Number.isFinite(o.suppressionTime)) {
      throw new RangeError(`suppressionTime must be a finite number >= 0, got ${String(o.suppressionTime)}`);
    }
    this.suppressionTime = o.suppressionTime;
    this.seasonalSlots = integerIn('seasonalSlots', o.seasonalSlots, 1, 1440);
    this.seasonalDays = positive('seasonalDays', o.seasonalDays);
    this.seasonalMinDays = integerIn('seasonalMinDays', o.seasonalMinDays, 0, 1e6);
    if (typeof o.seasonalFactor !== 'number' || !(o.seasonalFactor >= 0 && o.seasonalFactor <= 10)) {
      throw new RangeError(`seasonalFactor must be a number between 0 and 10, got ${String(o.seasonalFactor)}`);
    }
    this.seasonalFactor = o.seasonalFactor;
    if (typeof o.contextMargin !== 'number' || !(o.contextMargin >= 0 && o.contextMargin <= 1000)) {
      throw new RangeError(`contextMargin must be a number between 0 and 1000, got ${String(o.contextMargin)}`);
    }
    this.contextMargin = o.contextMargin;
    this.alarmZ = zForEvidence(this.alarmLevel);
    this.ring = new Float64Array(this.shortWindow);
    this.slotPeak = new Float64Array(this.seasonalSlots);
    this.slotDays = new Float64Array(this.seasonalSlots);
    this.slotDay = new Float64Array(this.seasonalSlots).fill(-1);
    this.slotToday = new Float64Array(this.seasonalSlots);
    this.slotCount = new Float64Array(this.seasonalSlots);
    this.contextRing = new Float64Array(this.shortWindow);
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
      suppressionTime: this.suppressionTime,
      minRelativeDeviation: this.minRelativeDeviation,
      minDeviation: this.minDeviation,
      seasonalSlots: this.seasonalSlots,
      seasonalDays: this.seasonalDays,
      seasonalMinDays: this.seasonalMinDays,
      seasonalFactor: this.seasonalFactor,
      contextMargin: this.contextMargin,
    };
  }

  /** `time`: the record's timestamp in ms since the epoch, NaN when it has none. */
  grade(score: number, values: ArrayLike<number>, ready: boolean, time = Number.NaN): GradeResult {
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
    const timed = Number.isFinite(time);
    const slot = timed ? this.#enterSlot(time) : -1;
    const contextZ = slot >= 0 && this.contextMargin < 1000 ? this.#contextZ(slot, values) : -Infinity;

    if (this.scored > this.warmup) {
      const peak = slot >= 0 && this.seasonalFactor > 0 ? this.seasonalFactor * this.#seasonalPeak(slot) : 0;
      const baseline = Math.max(this.mean, peak);
      const deviation = Math.max(Math.sqrt(this.variance), this.minRelativeDeviation * Math.abs(baseline), this.minDeviation);
      // Below z = 0 the context's evidence is at most log10(2), which the margin cancels: the
      // tail is only evaluated where it can count (the same result, at half the cost).
      const context = contextZ > 0 || this.contextMargin < Math.LOG10E * Math.LN2 ? tailEvidence(contextZ) - this.contextMargin : 0;
      const evidence = Math.max(tailEvidence((short - baseline) / deviation), context);
      this.evidence = evidence;
      // The score at which this record's short-term score reaches the alarm level.
      const others = ((1 - w) * (sum - score)) / filled;
      r.threshold = Math.max(0, (baseline + this.alarmZ * deviation - others) / ((1 - w) / filled + w));
      this.sinceAlarm++;
      // Time going backwards (clock changes, out-of-order records) keeps the suppression on.
      const quietLongEnough = !timed || !(time - this.lastAlarmTime <= this.suppressionTime);
      if (this.sinceAlarm > this.suppression && quietLongEnough) {
        r.grade = gradeOf(evidence, this.alarmLevel);
        if (evidence >= this.alarmLevel) {
          r.anomaly = true;
          this.sinceAlarm = 0;
          if (timed) this.lastAlarmTime = time;
        }
      }
    }
    if (slot >= 0 && short > this.slotToday[slot]!) this.slotToday[slot] = short;
    this.#learn(short);
    return r;
  }

  /** The slot of `time`; on a slot's first record of a new day, folds the previous day's peak in. */
  #enterSlot(time: number): number {
    const n = this.seasonalSlots;
    const day = Math.floor(time / DAY_MS);
    const slot = Math.min(n - 1, Math.floor(((time - day * DAY_MS) / DAY_MS) * n));
    if (this.slotDay[slot] !== day) {
      if (this.slotDay[slot]! >= 0) {
        const days = ++this.slotDays[slot]!;
        const weight = Math.max(1 / days, 1 / this.seasonalDays);
        this.slotPeak[slot]! += weight * (this.slotToday[slot]! - this.slotPeak[slot]!);
      }
      this.slotDay[slot] = day;
      this.slotToday[slot] = 0;
    }
    return slot;
  }

  /**
   * Step 6: the z-score of the record's contextual surprise against its history (-Infinity
   * while the slot is too new or the statistics warm up), then learns the values.
   */
  #contextZ(slot: number, values: ArrayLike<number>): number {
    const d = values.length;
    if (this.contextDims === 0 && d > 0) {
      this.contextDims = d;
      this.contextMean = new Float64Array(this.seasonalSlots * d);
      this.contextDev = new Float64Array(this.seasonalSlots * d);
    }
    if (d !== this.contextDims) return -Infinity;
    const base = slot * d;
    let z = -Infinity;
    if (this.slotDays[slot]! >= this.seasonalMinDays) {
      let surprise = 0;
      for (let j = 0; j < d; j++) {
        const m = this.contextMean[base + j]!;
        const c = Math.abs(values[j]! - m) / Math.max(this.contextDev[base + j]!, 1e-9 + 1e-6 * Math.abs(m));
        if (c > surprise) surprise = c;
      }
      const w = this.shortWindow;
      this.contextRing[this.contextRingNext] = surprise;
      this.contextRingNext = this.contextRingNext + 1 === w ? 0 : this.contextRingNext + 1;
      this.contextScored++;
      const filled = Math.min(this.contextScored, w);
      let sum = 0;
      for (let j = filled; j >= 1; j--) sum += this.contextRing[(this.contextRingNext - j + w) % w]!;
      const short = sum / filled;
      if (this.contextScored > this.warmup) {
        const deviation = Math.max(Math.sqrt(this.contextVariance), this.minRelativeDeviation * this.contextAverage, this.minDeviation);
        z = (short - this.contextAverage) / deviation;
      }
      const k = this.contextScored < this.longHorizon ? 1 / this.contextScored : 1 / this.longHorizon;
      const delta = short - this.contextAverage;
      this.contextAverage += k * delta;
      this.contextVariance = (1 - k) * (this.contextVariance + k * delta * delta);
    }
    // Records per day in this slot, so the average spans seasonalDays days at any rate.
    const count = ++this.slotCount[slot]!;
    const perDay = count / Math.max(1, this.slotDays[slot]! + 1);
    const weight = Math.max(1 / count, 1 / (this.seasonalDays * perDay));
    for (let j = 0; j < d; j++) {
      const delta = values[j]! - this.contextMean[base + j]!;
      this.contextMean[base + j]! += weight * delta;
      this.contextDev[base + j]! += weight * (Math.abs(delta) - this.contextDev[base + j]!);
    }
    return z;
  }

  /** The largest usual daily peak of the slot and its neighbours (timing jitters), 0 while any is too new. */
  #seasonalPeak(slot: number): number {
    const n = this.seasonalSlots;
    let peak = 0;
    for (let k = -1; k <= 1; k++) {
      const s = (slot + k + n) % n;
      if (this.slotDays[s]! < this.seasonalMinDays) return 0;
      if (this.slotPeak[s]! > peak) peak = this.slotPeak[s]!;
    }
    return peak;
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
   * variance, ringNext, evidence, suppressionTime, seasonalSlots, seasonalDays,
   * seasonalMinDays, seasonalFactor, lastAlarmTime (-MAX_VALUE for none), contextMargin,
   * contextDims, contextScored, contextAverage, contextVariance, contextRingNext,
   * ring (shortWindow), contextRing (shortWindow), per slot (seasonalSlots values each):
   * slotPeak, slotDay, slotToday, slotDays, slotCount, then contextMean and contextDev
   * (seasonalSlots x contextDims each)].
   */
  saveState(): Float64Array {
    const slots = this.seasonalSlots;
    const w = this.shortWindow;
    const out = new Float64Array(STATE_HEADER + 2 * w + SLOT_ARRAYS * slots + 2 * slots * this.contextDims);
    out.set([
      STATE_VERSION,
      w,
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
      this.suppressionTime,
      slots,
      this.seasonalDays,
      this.seasonalMinDays,
      this.seasonalFactor,
      this.lastAlarmTime === -Infinity ? -Number.MAX_VALUE : this.lastAlarmTime,
      this.contextMargin,
      this.contextDims,
      this.contextScored,
      this.contextAverage,
      this.contextVariance,
      this.contextRingNext,
    ]);
    let o = STATE_HEADER;
    for (const a of [this.ring, this.contextRing, this.slotPeak, this.slotDay, this.slotToday, this.slotDays, this.slotCount, this.contextMean, this.contextDev]) {
      out.set(a, o);
      o += a.length;
    }
    return out;
  }

  static restoreState(state: ArrayLike<number>): QualityGrader {
    const version = state[0];
    const v2 = version === 2;
    if (!(v2 || version === STATE_VERSION) || state.length < (v2 ? V2_HEADER : STATE_HEADER)) {
      throw new RangeError(`not a QualityGrader state (version ${String(version)}, expected ${STATE_VERSION})`);
    }
    // A version-2 state came from a grader without timestamps or seasonal context: keep it so.
    const g = new QualityGrader({
      shortWindow: state[1]!,
      latestWeight: state[2]!,
      longHorizon: state[3]!,
      warmup: state[4]!,
      alarmLevel: state[5]!,
      suppression: state[6]!,
      minRelativeDeviation: state[7]!,
      minDeviation: state[8]!,
      suppressionTime: v2 ? 0 : state[15]!,
      seasonalSlots: v2 ? 1 : state[16]!,
      seasonalDays: v2 ? 1 : state[17]!,
      seasonalMinDays: v2 ? 0 : state[18]!,
      seasonalFactor: v2 ? 0 : state[19]!,
      contextMargin: v2 ? 1000 : state[21]!,
    });
    const w = g.shortWindow;
    const slots = g.seasonalSlots;
    const dims = v2 ? 0 : state[22]!;
    if (!Number.isInteger(dims) || dims < 0 || dims > 1000) throw new RangeError('QualityGrader state: bad context dimensions');
    const expected = v2 ? V2_HEADER + w : STATE_HEADER + 2 * w + SLOT_ARRAYS * slots + 2 * slots * dims;
    if (state.length !== expected) {
      throw new RangeError(`QualityGrader state has ${state.length} values, expected ${expected}`);
    }
    const scored = state[9]!;
    const since = state[10]!;
    const next = state[13]!;
    if (!Number.isInteger(scored) || scored < 0 || !(since === -1 || (Number.isInteger(since) && since >= 0))) {
      throw new RangeError('QualityGrader state: bad counters');
    }
    if (!Number.isInteger(next) || next < 0 || next >= w) throw new RangeError('QualityGrader state: bad ring position');
    g.scored = scored;
    g.sinceAlarm = since === -1 ? Infinity : since;
    g.mean = state[11]!;
    g.variance = state[12]!;
    g.ringNext = next;
    g.evidence = state[14]!;
    const read = (into: Float64Array, at: number): number => {
      for (let j = 0; j < into.length; j++) into[j] = state[at + j]!;
      return at + into.length;
    };
    if (v2) {
      read(g.ring, V2_HEADER);
      return g;
    }
    const last = state[20]!;
    g.lastAlarmTime = last === -Number.MAX_VALUE ? -Infinity : last;
    const contextNext = state[26]!;
    if (!Number.isInteger(contextNext) || contextNext < 0 || contextNext >= w || !Number.isInteger(state[23]!) || state[23]! < 0) {
      throw new RangeError('QualityGrader state: bad context counters');
    }
    g.contextDims = dims;
    g.contextScored = state[23]!;
    g.contextAverage = state[24]!;
    g.contextVariance = state[25]!;
    g.contextRingNext = contextNext;
    g.contextMean = new Float64Array(slots * dims);
    g.contextDev = new Float64Array(slots * dims);
    let o = STATE_HEADER;
    for (const a of [g.ring, g.contextRing, g.slotPeak, g.slotDay, g.slotToday, g.slotDays, g.slotCount, g.contextMean, g.contextDev]) o = read(a, o);
    return g;
  }
}
