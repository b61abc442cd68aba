import { JavaRandom } from './java-random';
import { lnTable } from './ln';
import { PointStore } from './point-store';
import { lookupQuad, lookupQuadWithBoxes, NONE, WIDE, quadDepthB, quadDepthC, quadDepthD, RandomCutTree } from './random-cut-tree';
import { RejectionBound, Sampler } from './sampler';

// The Random Cut Forest of rcf-algorithm.md §4–7, the twin of src/engine/ts. Inputs are
// trusted: the TypeScript host validates them. Records arrive as f64 and become f32 here.
export class RandomCutForest {
  readonly dimensions: i32; // D = b·k
  readonly trees: StaticArray<RandomCutTree>;
  readonly samplers: StaticArray<Sampler>;
  readonly store: PointStore;
  /** Total update calls N. */
  updates: i64 = 0;
  /** The shingle buffer B: the last k records, oldest first. */
  readonly shingle: StaticArray<f32>;
  private readonly candidate: StaticArray<f32>;
  private readonly ln: StaticArray<f64>;
  private readonly rng: JavaRandom;
  private readonly bound: RejectionBound = new RejectionBound();
  private readonly treeHigh: StaticArray<f64>;
  private readonly treeLow: StaticArray<f64>;
  private readonly up: StaticArray<f64>;
  private readonly dn: StaticArray<f64>;
  private readonly shadow: StaticArray<f32>;
  /** Root-to-leaf paths for four interleaved lookups; A is also the trees' own scratch path. */
  private readonly pathA: StaticArray<i32>;
  private readonly pathB: StaticArray<i32>;
  private readonly pathC: StaticArray<i32>;
  private readonly pathD: StaticArray<i32>;
  /** Trees that accepted the current update's point (scratch). */
  private readonly accepted: StaticArray<i32>;

  constructor(
    readonly numberOfTrees: i32,
    readonly sampleSize: i32,
    readonly baseDimensions: i32,
    readonly shingleSize: i32,
    readonly timeDecay: f64,
    readonly outputAfter: i64,
    seed: i64,
  ) {
    const T = numberOfTrees;
    const S = sampleSize;
    const D = baseDimensions * shingleSize;
    this.dimensions = D;
    this.shingle = new StaticArray<f32>(D);
    this.candidate = new StaticArray<f32>(D);
    this.ln = lnTable(S + 1);
    const store = new PointStore(D, min(T * S + 1, 2 * S + 16), T * S + 1);
    this.store = store;
    const rng = new JavaRandom();
    this.rng = rng;
    this.treeHigh = new StaticArray<f64>(D);
    this.treeLow = new StaticArray<f64>(D);
    this.up = new StaticArray<f64>(D);
    this.dn = new StaticArray<f64>(D);
    this.shadow = new StaticArray<f32>(2 * D);
    const path = new StaticArray<i32>(S + 1);
    this.pathA = path;
    this.pathB = new StaticArray<i32>(S + 1);
    this.pathC = new StaticArray<i32>(S + 1);
    this.pathD = new StaticArray<i32>(S + 1);
    this.accepted = new StaticArray<i32>(T);
    const forestRng = new JavaRandom();
    forestRng.setSeed(seed);
    const trees = new StaticArray<RandomCutTree>(T);
    const samplers = new StaticArray<Sampler>(T);
    this.trees = trees;
    this.samplers = samplers;
    for (let t = 0; t < T; t++) {
      const tree = new RandomCutTree(D, S, store, rng, path);
      tree.seed = forestRng.nextLong();
      const sampler = new Sampler(S, rng);
      sampler.seed = forestRng.nextLong();
      unchecked(trees[t] = tree);
      unchecked(samplers[t] = sampler);
    }
  }

  get isReady(): bool {
    return this.updates >= this.outputAfter && this.updates >= <i64>this.shingleSize;
  }

  /** c = B without its oldest record, then x (f32, -0 → +0). */
  private buildCandidate(x: usize): void {
    const b = this.baseDimensions;
    const D = this.dimensions;
    const c = this.candidate;
    const B = this.shingle;
    for (let i = 0; i < D - b; i++) unchecked(c[i] = B[i + b]);
    for (let i = 0; i < b; i++) {
      let v = <f32>load<f64>(x + (<usize>i << 3));
      if (v == 0) v = 0; // -0 → +0
      unchecked(c[D - b + i] = v);
    }
  }

  /** Score of the record at address x (b f64 values). */
  score(x: usize): f64 {
    if (!this.isReady) return 0;
    this.buildCandidate(x);
    const c = this.candidate;
    const trees = this.trees;
    const samplers = this.samplers;
    const T = trees.length;
    const ln = this.ln;
    const pathA = this.pathA;
    const pathB = this.pathB;
    // Trees in fours, their lookups interleaved; the sum stays in tree order.
    const pathC = this.pathC;
    const pathD = this.pathD;
    let acc: f64 = 0;
    let t = 0;
    for (; t + 3 < T; t += 4) {
      const a = unchecked(trees[t]);
      const b = unchecked(trees[t + 1]);
      const cc = unchecked(trees[t + 2]);
      const d = unchecked(trees[t + 3]);
      // D >= WIDE: the lookups also load the boxes the four ascents will read.
      const ha = this.dimensions >= WIDE
        ? lookupQuadWithBoxes(a, b, cc, d, c, pathA, pathB, pathC, pathD)
        : lookupQuad(a, b, cc, d, c, pathA, pathB, pathC, pathD);
      const sa = a.scoreAlong(pathA, ha, c, unchecked(samplers[t]).size, ln);
      acc = t == 0 ? sa : acc + sa;
      acc += b.scoreAlong(pathB, quadDepthB, c, unchecked(samplers[t + 1]).size, ln);
      acc += cc.scoreAlong(pathC, quadDepthC, c, unchecked(samplers[t + 2]).size, ln);
      acc += d.scoreAlong(pathD, quadDepthD, c, unchecked(samplers[t + 3]).size, ln);
    }
    for (; t < T; t++) {
      const s = unchecked(trees[t]).score(c, unchecked(samplers[t]).size, ln);
      acc = t == 0 ? s : acc + s;
    }
    return acc / <f64>T;
  }

  /** Attribution of the record at x: high to out[0..D), low to out[D..2D) (f64 addresses). */
  attribution(x: usize, out: usize): void {
    const D = this.dimensions;
    memory.fill(out, 0, <usize>(2 * D) << 3);
    if (!this.isReady) return;
    this.buildCandidate(x);
    const th = this.treeHigh;
    const tl = this.treeLow;
    const T = this.trees.length;
    const lowOut = out + (<usize>D << 3);
    for (let t = 0; t < T; t++) {
      unchecked(this.trees[t]).attribution(this.candidate, unchecked(this.samplers[t]).size, this.ln, th, tl, this.up, this.dn, this.shadow);
      for (let d = 0; d < D; d++) {
        const ho = out + (<usize>d << 3);
        const lo = lowOut + (<usize>d << 3);
        if (t == 0) {
          store<f64>(ho, unchecked(th[d]));
          store<f64>(lo, unchecked(tl[d]));
        } else {
          store<f64>(ho, load<f64>(ho) + unchecked(th[d]));
          store<f64>(lo, load<f64>(lo) + unchecked(tl[d]));
        }
      }
    }
    const inv = 1.0 / <f64>T;
    for (let d = 0; d < 2 * D; d++) {
      const a = out + (<usize>d << 3);
      store<f64>(a, load<f64>(a) * inv);
    }
  }

  /** Learns the record at address x. */
  update(x: usize): void {
    this.buildCandidate(x);
    const c = this.candidate;
    memory.copy(changetype<usize>(this.shingle), changetype<usize>(c), <usize>this.dimensions << 2);
    const k = this.shingleSize;
    const seq = this.updates - <i64>(k - 1);
    this.updates++;
    if (this.updates < <i64>k) return;
    const store = this.store;
    const point = store.add(c);
    const lambda = this.timeDecay;
    const trees = this.trees;
    const samplers = this.samplers;
    const bound = this.bound;
    bound.prepare(seq, lambda);
    // Trees are independent, so the order of their work is free: first every sampler's
    // decision and eviction, then the inserts, four at a time with interleaved lookups.
    const accepted = this.accepted;
    let n = 0;
    for (let t = 0; t < trees.length; t++) {
      const sampler = unchecked(samplers[t]);
      if (!sampler.decide(seq, lambda, bound)) continue;
      const tree = unchecked(trees[t]);
      if (sampler.evictedRef >= 0) tree.delete(sampler.evictedRef);
      if (tree.root == NONE) sampler.push(sampler.acceptedWeight, tree.insert(point));
      else unchecked(accepted[n++] = t);
    }
    let i = 0;
    if (n >= 4) {
      // lookupQuad reads the query from offset 0: give it the point's own copy.
      const q = this.candidate;
      const pathA = this.pathA;
      const pathB = this.pathB;
      const pathC = this.pathC;
      const pathD = this.pathD;
      for (; i + 3 < n; i += 4) {
        const ta = unchecked(accepted[i]);
        const tb = unchecked(accepted[i + 1]);
        const tc = unchecked(accepted[i + 2]);
        const td = unchecked(accepted[i + 3]);
        const a = unchecked(trees[ta]);
        const b = unchecked(trees[tb]);
        const cc = unchecked(trees[tc]);
        const d = unchecked(trees[td]);
        const ha = lookupQuad(a, b, cc, d, q, pathA, pathB, pathC, pathD);
        const hb = quadDepthB;
        const hc = quadDepthC;
        const hd = quadDepthD;
        unchecked(samplers[ta]).push(unchecked(samplers[ta]).acceptedWeight, a.insertAlong(point, pathA, ha));
        unchecked(samplers[tb]).push(unchecked(samplers[tb]).acceptedWeight, b.insertAlong(point, pathB, hb));
        unchecked(samplers[tc]).push(unchecked(samplers[tc]).acceptedWeight, cc.insertAlong(point, pathC, hc));
        unchecked(samplers[td]).push(unchecked(samplers[td]).acceptedWeight, d.insertAlong(point, pathD, hd));
      }
    }
    for (; i < n; i++) {
      const t = unchecked(accepted[i]);
      unchecked(samplers[t]).push(unchecked(samplers[t]).acceptedWeight, unchecked(trees[t]).insert(point));
    }
    store.discardIfUnused(point);
  }

  /** Score then update for n records at x; scores to out. */
  process(x: usize, n: i32, out: usize): void {
    const stride = <usize>this.baseDimensions << 3;
    for (let i = 0; i < n; i++) {
      store<f64>(out + (<usize>i << 3), this.score(x));
      this.update(x);
      x += stride;
    }
  }

  memoryBytes(): i32 {
    let bytes = this.store.memoryBytes();
    for (let t = 0; t < this.trees.length; t++) {
      bytes += unchecked(this.trees[t]).memoryBytes() + unchecked(this.samplers[t]).memoryBytes();
    }
    return bytes;
  }
}
