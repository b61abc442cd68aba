/**
 * Deterministic data streams for the benchmark, following the recipes of the shared reference
 * vectors (/work/shared/rcf/vectors/README.md, "Data streams"):
 *
 * - TEMP (1-D): exactly the reference TEMP stream. With dataSeed 42 its first 50,000 values are
 *   the inputs of temp_t50_s1 / temp_t50_s4.
 * - WAVE (d-D): the reference WAVE3 recipe generalised to d dimensions. Per point: draw u; for each
 *   k = 0..d-1 draw noise = next()·2 − 1 and set v_k = A[k]·sin(2π·(i/100 + k/d)) + noise; if
 *   u < 0.002 draw j = floor(next()·d) and multiply v_j by 4 (spike); x_k = fround(v_k).
 *   With d = 3 and A = [10, 5, 25] this is exactly WAVE3 (dataSeed 5 gives the inputs of
 *   wave3_t30_s1_attr). The 5-D extension (WAVE5) uses A = [10, 5, 25, 15, 8]: two more
 *   sinusoids with their own amplitudes, phases spread evenly over the period (k/5), and the
 *   spike dimension drawn uniformly over all five.
 *
 * Streams are endless cursors: `fill` writes the next points into a caller-owned buffer, so a
 * benchmark block continues exactly where the previous one stopped, without allocating.
 */
import { mulberry32 } from '../src/generate/temperature.js';

export interface PointStream {
  /** e.g. "TEMP seed 42". */
  readonly name: string;
  /** Values per point (the forest's base dimensions). */
  readonly dimensions: number;
  /** Points produced so far (the index of the next point). */
  readonly position: number;
  /**
   * Writes the next `count` points, point after point, into `out[0 .. count·dimensions)`.
   * `count` defaults to as many whole points as `out` holds. Returns `out`.
   */
  fill(out: Float64Array, count?: number): Float64Array;
}

export const TEMP_SEED = 42;
export const WAVE_SEED = 5;
/** WAVE3's amplitudes, as in the reference vectors. */
export const WAVE3_AMPLITUDES: readonly number[] = [10, 5, 25];
/** The documented 5-D extension. */
export const WAVE5_AMPLITUDES: readonly number[] = [10, 5, 25, 15, 8];

const OUTLIER_RATE = 0.01;
const SPIKE_RATE = 0.002;
const TWO_PI = 2.0 * Math.PI;

function pointsIn(out: Float64Array, dimensions: number, count: number | undefined): number {
  const n = count ?? Math.floor(out.length / dimensions);
  if (!Number.isInteger(n) || n < 0 || n * dimensions > out.length) {
    throw new RangeError(`cannot write ${String(count)} points of ${dimensions} values into ${out.length} slots`);
  }
  return n;
}

/** The reference TEMP stream: 30 ± 2, with 1% outliers uniform in 15..45; two draws per point. */
export class TempStream implements PointStream {
  readonly dimensions = 1;
  readonly name: string;
  position = 0;
  private readonly next: () => number;

  constructor(readonly seed: number = TEMP_SEED) {
    this.name = `TEMP seed ${seed}`;
    this.next = mulberry32(seed);
  }

  fill(out: Float64Array, count?: number): Float64Array {
    const n = pointsIn(out, 1, count);
    const next = this.next;
    for (let i = 0; i < n; i++) {
      const u = next();
      out[i] = u < OUTLIER_RATE ? Math.fround(15.0 + 30.0 * next()) : Math.fround(30.0 + (next() * 4.0 - 2.0));
    }
    this.position += n;
    return out;
  }
}

/** The WAVE recipe over d = amplitudes.length dimensions (WAVE3 for the reference amplitudes). */
export class WaveStream implements PointStream {
  readonly dimensions: number;
  readonly name: string;
  position = 0;
  private readonly next: () => number;
  private readonly amplitudes: Float64Array;
  private readonly v: Float64Array;

  constructor(amplitudes: readonly number[], readonly seed: number = WAVE_SEED) {
    if (amplitudes.length < 1) throw new RangeError('a wave stream needs at least one amplitude');
    this.dimensions = amplitudes.length;
    this.name = `WAVE${amplitudes.length} seed ${seed}`;
    this.next = mulberry32(seed);
    this.amplitudes = Float64Array.from(amplitudes);
    this.v = new Float64Array(amplitudes.length);
  }

  fill(out: Float64Array, count?: number): Float64Array {
    const d = this.dimensions;
    const n = pointsIn(out, d, count);
    const { next, amplitudes: A, v } = this;
    for (let p = 0; p < n; p++) {
      const i = this.position + p;
      const u = next();
      for (let k = 0; k < d; k++) {
        const noise = next() * 2.0 - 1.0;
        v[k] = A[k]! * Math.sin(TWO_PI * (i / 100.0 + k / d)) + noise;
      }
      if (u < SPIKE_RATE) {
        const j = Math.floor(next() * d);
        v[j] = v[j]! * 4.0;
      }
      for (let k = 0; k < d; k++) out[p * d + k] = Math.fround(v[k]!);
    }
    this.position += n;
    return out;
  }
}

export type StreamKind = 'temp' | 'wave3' | 'wave5';

/** A fresh stream of the given kind at its default seed. */
export function createStream(kind: StreamKind): PointStream {
  switch (kind) {
    case 'temp':
      return new TempStream(TEMP_SEED);
    case 'wave3':
      return new WaveStream(WAVE3_AMPLITUDES, WAVE_SEED);
    case 'wave5':
      return new WaveStream(WAVE5_AMPLITUDES, WAVE_SEED);
  }
}

/** The next `count` points of a stream in a new array. */
export function take(stream: PointStream, count: number): Float64Array {
  return stream.fill(new Float64Array(count * stream.dimensions), count);
}
