/**
 * Threshold strategies: what turns a forest's anomaly score into a yes/no decision.
 *
 * The detector calls `grade()` once for every record, right after scoring it and before
 * the forest learns it, so a strategy sees exactly the stream of scores the forest produced
 * and may keep running statistics of its own.
 */

export interface GradeResult {
  anomaly: boolean;
  /** Confidence in [0, 1]: 0 for normal records; fixed thresholds use 1 for every anomaly. */
  grade: number;
  /** The threshold the score was compared with. */
  threshold: number;
  /**
   * The score to report in place of the forest's, when the strategy defines its own
   * (AWS's TRCF reports 0 for its first 10 records whatever the forest says). Absent:
   * report the forest's score.
   */
  score?: number;
}

export interface Grader {
  /**
   * Called for every record after scoring. `values` are the record's base values
   * (`dimensions` numbers), `ready` whether the forest produced a real score, `time` the
   * record's timestamp in ms since the epoch (NaN, or omitted, when it has none).
   * The returned object may be reused by the next call: copy what you keep.
   */
  grade(score: number, values: ArrayLike<number>, ready: boolean, time?: number): GradeResult;
  /** All state as numbers, for exact snapshots (graders without state may omit it). */
  saveState?(): Float64Array;
}

/** `--threshold 3.0`: anomaly iff the forest is ready and score >= threshold. */
export class FixedThresholdGrader implements Grader {
  readonly threshold: number;
  // Reused: one allocation per record is measurable at 100k records/s.
  readonly #result: GradeResult = { anomaly: false, grade: 0, threshold: 0 };

  constructor(threshold: number) {
    if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
      throw new RangeError(`threshold must be a finite number, got ${String(threshold)}`);
    }
    this.threshold = threshold;
    this.#result.threshold = threshold;
  }

  grade(score: number, _values: ArrayLike<number>, ready: boolean): GradeResult {
    const anomaly = ready && score >= this.threshold;
    const r = this.#result;
    r.anomaly = anomaly;
    r.grade = anomaly ? 1 : 0;
    return r;
  }

  /** Stateless apart from its configuration: [threshold]. */
  saveState(): Float64Array {
    return Float64Array.of(this.threshold);
  }

  static restoreState(state: ArrayLike<number>): FixedThresholdGrader {
    return new FixedThresholdGrader(state[0]!);
  }
}
