import type { ForestEngine } from './engine.js';
import { validateValues, type EngineName, type ForestConfig } from './options.js';
import { encodeSnapshot } from './snapshot.js';

export interface Attribution {
  /** How much each coordinate (over dimensions × shingleSize, oldest record first) being too high adds to the score. */
  high: Float64Array;
  /** Likewise for being too low. Σ(high + low) ≈ score. */
  low: Float64Array;
}

/**
 * A Random Cut Forest, the public face of either engine: validates every input before it
 * reaches the engine, so a bad point is a TypeError/RangeError, never a corrupted model.
 */
export class Forest {
  private disposed = false;
  private readonly scratch: Float64Array;

  constructor(
    private readonly engineImpl: ForestEngine,
    readonly engine: EngineName,
  ) {
    this.scratch = new Float64Array(engineImpl.config.baseDimensions);
  }

  get config(): Readonly<ForestConfig> {
    return this.engineImpl.config;
  }

  /** True once scores are produced (after outputAfter updates, and a full shingle). */
  get isReady(): boolean {
    return this.live().isReady;
  }

  get totalUpdates(): number {
    return this.live().updates;
  }

  /** Bytes of model memory held by this forest. */
  get memoryBytes(): number {
    return this.live().memoryBytes();
  }

  /** Anomaly score of a record, without learning it; 0 until ready. */
  score(point: ArrayLike<number>): number {
    return this.live().score(this.checked(point), 0);
  }

  attribution(point: ArrayLike<number>): Attribution {
    const e = this.live();
    const D = e.config.dimensions;
    const out = { high: new Float64Array(D), low: new Float64Array(D) };
    e.attribution(this.checked(point), 0, out.high, out.low);
    return out;
  }

  /** Learns a record. */
  update(point: ArrayLike<number>): void {
    this.live().update(this.checked(point), 0);
  }

  /**
   * Scores then learns each record of a batch: `points` holds n·dimensions values,
   * record after record. Returns n scores (in `out` when given).
   */
  process(points: ArrayLike<number>, out?: Float64Array): Float64Array {
    const e = this.live();
    const b = e.config.baseDimensions;
    if (points === null || typeof points !== 'object' || typeof points.length !== 'number') {
      throw new TypeError('points must be an array-like of numbers');
    }
    if (points.length % b !== 0) {
      throw new RangeError(`points has ${points.length} values, not a multiple of dimensions (${b})`);
    }
    const n = points.length / b;
    validateValues(points, 0, n, b, 'points');
    const values = points instanceof Float64Array ? points : Float64Array.from(points);
    if (out !== undefined && !(out instanceof Float64Array && out.length >= n)) {
      throw new RangeError(`out must be a Float64Array of length >= ${n}`);
    }
    const scores = out ?? new Float64Array(n);
    e.process(values, n, scores);
    return scores;
  }

  /**
   * The complete model as a compact, versioned, checksummed binary image. Restored with
   * `restoreForest` (by either engine), the forest continues exactly as this one would.
   */
  snapshot(): Uint8Array {
    const e = this.live();
    return encodeSnapshot(e.config, e.exportModelState(), this.engine, e.binaryId);
  }

  /** Releases the model's memory; any later use throws. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.engineImpl.dispose();
  }

  /** The engine behind this forest (internal: invariant checks and snapshots). */
  get engineInstance(): ForestEngine {
    return this.live();
  }

  private live(): ForestEngine {
    if (this.disposed) throw new Error('this forest has been disposed');
    return this.engineImpl;
  }

  private checked(point: ArrayLike<number>): Float64Array {
    const b = this.engineImpl.config.baseDimensions;
    if (point === null || typeof point !== 'object' || typeof point.length !== 'number') {
      throw new TypeError(`point must be an array-like of ${b} numbers`);
    }
    if (point.length !== b) throw new RangeError(`point has ${point.length} values, expected dimensions = ${b}`);
    validateValues(point, 0, 1, b, 'point');
    const s = this.scratch;
    for (let i = 0; i < b; i++) s[i] = point[i]!;
    return s;
  }
}
