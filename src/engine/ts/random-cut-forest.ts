import { JavaRandom } from './java-random.js';
import { lnTable } from './ln.js';
import { PointStore } from './point-store.js';
import { RandomCutTree } from './random-cut-tree.js';
import { RejectionBound, Sampler } from './sampler.js';
import type { ForestConfig } from '../../forest/options.js';

/**
 * The pure-TypeScript Random Cut Forest (rcf-algorithm.md §4–7). Inputs are trusted:
 * the public wrapper validates them. Points arrive as f64 base records and are turned
 * into f32 shingles here.
 */
export class RandomCutForest {
  readonly dimensions: number; // D = b·k
  readonly trees: RandomCutTree[] = [];
  readonly samplers: Sampler[] = [];
  readonly store: PointStore;
  /** Total update calls N. */
  updates = 0;
  /** The shingle buffer B: the last k records, oldest first. */
  readonly shingle: Float32Array;
  private readonly candidate: Float32Array;
  private readonly ln: Float64Array;
  private readonly rng = new JavaRandom();
  private readonly bound = new RejectionBound();
  // Attribution scratch
  private readonly treeHigh: Float64Array;
  private readonly treeLow: Float64Array;
  private readonly up: Float64Array;
  private readonly dn: Float64Array;
  private readonly shadow: Float32Array;

  constructor(readonly config: ForestConfig) {
    const { numberOfTrees: T, sampleSize: S, baseDimensions: b, shingleSize: k } = config;
    const D = b * k;
    this.dimensions = D;
    this.shingle = new Float32Array(D);
    this.candidate = new Float32Array(D);
    this.ln = lnTable(S + 1);
    this.store = new PointStore(D, Math.min(T * S + 1, 2 * S + 16), T * S + 1);
    const path = new Int32Array(S + 1);
    const forestRng = new JavaRandom();
    forestRng.setSeed(config.seedHi, config.seedLo);
    for (let t = 0; t < T; t++) {
      const tree = new RandomCutTree(D, S, this.store, this.rng, path);
      forestRng.nextLong(tree.seed, 0);
      const sampler = new Sampler(S, this.rng);
      forestRng.nextLong(sampler.seed, 0);
      this.trees.push(tree);
      this.samplers.push(sampler);
    }
    this.treeHigh = new Float64Array(D);
    this.treeLow = new Float64Array(D);
    this.up = new Float64Array(D);
    this.dn = new Float64Array(D);
    this.shadow = new Float32Array(2 * D);
  }

  get isReady(): boolean {
    return this.updates >= this.config.outputAfter && this.updates >= this.config.shingleSize;
  }

  /** c = B without its oldest record, then x (f32, -0 → +0), into `out`. */
  private buildCandidate(x: ArrayLike<number>, xo: number, out: Float32Array): void {
    const b = this.config.baseDimensions;
    const D = this.dimensions;
    for (let i = 0; i < D - b; i++) out[i] = this.shingle[i + b]!;
    for (let i = 0; i < b; i++) out[D - b + i] = Math.fround(x[xo + i]!) + 0;
  }

  score(x: ArrayLike<number>, xo = 0): number {
    if (!this.isReady) return 0;
    const c = this.candidate;
    this.buildCandidate(x, xo, c);
    const M = this.samplers[0]!.size;
    const trees = this.trees;
    let acc = trees[0]!.score(c, 0, M, this.ln);
    for (let t = 1; t < trees.length; t++) acc += trees[t]!.score(c, 0, this.samplers[t]!.size, this.ln);
    return acc / trees.length;
  }

  /** Writes high/low (length D each) for x; zeros before the forest is ready. */
  attribution(x: ArrayLike<number>, xo: number, high: Float64Array, low: Float64Array): void {
    const D = this.dimensions;
    high.fill(0, 0, D);
    low.fill(0, 0, D);
    if (!this.isReady) return;
    const c = this.candidate;
    this.buildCandidate(x, xo, c);
    const th = this.treeHigh;
    const tl = this.treeLow;
    const T = this.trees.length;
    for (let t = 0; t < T; t++) {
      this.trees[t]!.attribution(c, 0, this.samplers[t]!.size, this.ln, th, tl, this.up, this.dn, this.shadow);
      if (t === 0) {
        high.set(th);
        low.set(tl);
      } else {
        for (let d = 0; d < D; d++) {
          high[d]! += th[d]!;
          low[d]! += tl[d]!;
        }
      }
    }
    const inv = 1.0 / T;
    for (let d = 0; d < D; d++) {
      high[d]! *= inv;
      low[d]! *= inv;
    }
  }

  update(x: ArrayLike<number>, xo = 0): void {
    const c = this.candidate;
    this.buildCandidate(x, xo, c);
    this.shingle.set(c);
    const k = this.config.shingleSize;
    const seq = this.updates - (k - 1);
    this.updates++;
    if (this.updates < k) return;
    const store = this.store;
    const point = store.add(c, 0);
    const lambda = this.config.timeDecay;
    const bound = this.bound;
    bound.prepare(seq, lambda);
    for (let t = 0; t < this.trees.length; t++) {
      const sampler = this.samplers[t]!;
      if (!sampler.decide(seq, lambda, bound)) continue;
      const tree = this.trees[t]!;
      if (sampler.evictedRef >= 0) tree.delete(sampler.evictedRef);
      sampler.push(sampler.acceptedWeight, tree.insert(point));
    }
    store.discardIfUnused(point);
  }

  /** Bytes held in typed arrays by trees, samplers and the point store. */
  memoryBytes(): number {
    let bytes = this.store.coords.byteLength + this.store.refCount.byteLength;
    for (const t of this.trees) {
      bytes += t.node.byteLength + t.cutDim.byteLength + t.box.byteLength + t.leafPoint.byteLength + t.leafMass.byteLength;
      bytes += t.boxRange.byteLength + t.outside.byteLength;
    }
    for (const s of this.samplers) bytes += s.weight.byteLength + s.ref.byteLength;
    return bytes;
  }

  /** Score then update, per point, for n points of b values each. */
  process(points: ArrayLike<number>, n: number, out: Float64Array): void {
    const b = this.config.baseDimensions;
    for (let i = 0; i < n; i++) {
      out[i] = this.score(points, i * b);
      this.update(points, i * b);
    }
  }
}
