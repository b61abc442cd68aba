/**
 * A bounded, streaming summary of one series for plotting: records arrive one at a time,
 * memory stays at most `maxBuckets` buckets whatever the input length. Each bucket covers
 * `width` consecutive records and keeps three of them: the lowest and highest first value
 * and the highest score. When the buckets run out, neighbours merge pairwise and the width
 * doubles. Anomalies are kept apart, every one of them (up to `maxAnomalies`, then counted),
 * so downsampling never hides one.
 */

export interface PlotPoint {
  /** Ordinal of the record in its series (0-based). */
  x: number;
  values: number[];
  score: number;
  threshold: number;
  anomaly: boolean;
}

interface Bucket {
  minValue: PlotPoint;
  maxValue: PlotPoint;
  maxScore: PlotPoint;
}

export class BucketSeries {
  readonly #maxBuckets: number;
  readonly #maxAnomalies: number;
  #width = 1;
  readonly #buckets: Bucket[] = [];
  readonly #anomalies: PlotPoint[] = [];
  #count = 0;
  #anomalyCount = 0;

  constructor(maxBuckets = 2000, maxAnomalies = 10_000) {
    if (!Number.isInteger(maxBuckets) || maxBuckets < 2) throw new RangeError(`maxBuckets must be an integer >= 2, got ${String(maxBuckets)}`);
    this.#maxBuckets = maxBuckets;
    this.#maxAnomalies = maxAnomalies;
  }

  /** Records seen. */
  get count(): number {
    return this.#count;
  }

  /** Anomalies seen (all of them, also those beyond maxAnomalies). */
  get anomalyCount(): number {
    return this.#anomalyCount;
  }

  /** Records per bucket now. */
  get width(): number {
    return this.#width;
  }

  /** Adds the next record; `values` is copied only when the record is kept. */
  add(values: ArrayLike<number>, offset: number, dimensions: number, score: number, threshold: number, anomaly: boolean): void {
    const x = this.#count++;
    const v = values[offset]!;
    let point: PlotPoint | undefined;
    const make = (): PlotPoint => {
      point ??= { x, values: Array.from({ length: dimensions }, (_, d) => values[offset + d]!), score, threshold, anomaly };
      return point;
    };
    if (anomaly) {
      this.#anomalyCount++;
      if (this.#anomalies.length < this.#maxAnomalies) this.#anomalies.push(make());
    }
    const index = Math.floor(x / this.#width);
    const last = this.#buckets[this.#buckets.length - 1];
    if (last === undefined || index >= this.#buckets.length) {
      const p = make();
      this.#buckets.push({ minValue: p, maxValue: p, maxScore: p });
      if (this.#buckets.length > this.#maxBuckets) this.#merge();
      return;
    }
    if (v < last.minValue.values[0]!) last.minValue = make();
    if (v > last.maxValue.values[0]!) last.maxValue = make();
    if (score > last.maxScore.score) last.maxScore = make();
  }

  #merge(): void {
    const merged: Bucket[] = [];
    const b = this.#buckets;
    for (let i = 0; i < b.length; i += 2) {
      const a = b[i]!;
      const c = b[i + 1];
      if (c === undefined) {
        merged.push(a);
        continue;
      }
      merged.push({
        minValue: c.minValue.values[0]! < a.minValue.values[0]! ? c.minValue : a.minValue,
        maxValue: c.maxValue.values[0]! > a.maxValue.values[0]! ? c.maxValue : a.maxValue,
        maxScore: c.maxScore.score > a.maxScore.score ? c.maxScore : a.maxScore,
      });
    }
    b.length = 0;
    b.push(...merged);
    this.#width *= 2;
  }

  /** The points to draw, ascending by x, each once. */
  points(): PlotPoint[] {
    const byX = new Map<number, PlotPoint>();
    for (const bucket of this.#buckets) {
      byX.set(bucket.minValue.x, bucket.minValue);
      byX.set(bucket.maxValue.x, bucket.maxValue);
      byX.set(bucket.maxScore.x, bucket.maxScore);
    }
    for (const p of this.#anomalies) byX.set(p.x, p);
    return [...byX.values()].sort((p, q) => p.x - q.x);
  }
}
