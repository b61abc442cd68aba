import type { JavaRandom } from './java-random.js';
import { lnCorrect } from './ln.js';

const TWO_POW_MINUS_48 = 1 / 281474976710656;

/** How many weights needed the correctly rounded fallback (for tests and curiosity). */
export const weightFallbacks = { count: 0 };

/**
 * F(((-seq)·λ) + ln(-ln u)) as Java computes it (§5.2, §2.3 rule 3): V8's logs are
 * faithful, so F(w) is Java's f32 unless w sits within the logs' error of an f32 rounding
 * boundary; then both logs are redone correctly rounded.
 */
export function samplerWeight(u: number, seq: number, lambda: number): number {
  return weightFor(u, -seq * lambda, -Math.log(u));
}

/** samplerWeight with decay = -seq·λ and y = -ln u already computed. */
function weightFor(u: number, decay: number, y: number): number {
  const inner = Math.log(y);
  const w = decay + inner;
  const tol = TWO_POW_MINUS_48 * (1 + Math.abs(decay) + Math.abs(inner));
  if (Math.fround(w - tol) !== Math.fround(w + tol)) {
    weightFallbacks.count++;
    return Math.fround(decay + lnCorrect(-lnCorrect(u)));
  }
  return Math.fround(w);
}

/** Updates per epoch of the rejection bound; shorter epochs keep maxGrowth near 1. */
const EPOCH = 256;

/**
 * The kernel's shared, conservative bound that lets full samplers reject without the second
 * logarithm (assembly/sampler.ts): with W the root weight, reject ⇐ w > W ⇐
 * -ln u > exp(W - decay). The exponent splits into a per-sampler part exp(W + refSeq·λ),
 * recomputed only when W or the epoch changes, and a per-update factor
 * exp((seq - refSeq)·λ) computed once for all trees. The 1e-9 margin dwarfs every rounding
 * error of exp, log and the sums (below 1e-13 relative while |decay| < 1e6; beyond that the
 * bound is disabled), so decisions are those of the plain comparison.
 */
export class RejectionBound {
  epoch = 0;
  refSeq = 0;
  growth = 0;
  /** The largest growth within an epoch, exp(EPOCH·λ): lets a sampler reject on u alone. */
  maxGrowth = 0;
  lambda = 0;

  /** Sets the factor for update `seq`; starts a new epoch every EPOCH updates. */
  prepare(seq: number, lambda: number): void {
    this.lambda = lambda;
    if (seq - this.refSeq >= EPOCH || seq < this.refSeq) {
      this.refSeq = seq;
      this.epoch++;
    }
    const enabled = Math.abs(seq * lambda) < 1e6;
    this.growth = enabled ? Math.exp((seq - this.refSeq) * lambda) : Infinity;
    this.maxGrowth = enabled ? Math.exp(EPOCH * lambda) : Infinity;
  }

  /** The per-sampler part for root weight w, with the margin. */
  base(w: number): number {
    return Math.exp(w + this.refSeq * this.lambda) * (1.0 + 1e-9);
  }
}

/**
 * Time-decayed compact sampler of one tree (rcf-algorithm.md §5): a max-heap on f32
 * weights whose root is the next entry to evict. Entries point at the tree's leaves.
 */
export class Sampler {
  readonly weight: Float32Array;
  readonly ref: Int32Array;
  size = 0;
  /** Current sampler seed as a Java long (hi32, lo32). */
  readonly seed = new Int32Array(2);
  /** Set by `decide`: the weight of the accepted point and the evicted entry's ref (-1: none). */
  acceptedWeight = 0;
  evictedRef = -1;

  constructor(readonly capacity: number, private readonly rng: JavaRandom) {
    this.weight = new Float32Array(capacity);
    this.ref = new Int32Array(capacity);
  }

  /** One sampler uniform: a fresh generator from the seed, which then moves on (§3.2). */
  private draw(): number {
    const rng = this.rng;
    rng.setSeed(this.seed[0]!, this.seed[1]!);
    rng.nextLong(this.seed, 0);
    return rng.nextDouble();
  }

  // The rejection bound's per-sampler part, for the root weight it was computed for.
  private boundWeight = NaN;
  private boundEpoch = -1;
  private boundBase = 0;
  private boundU = 0;

  /**
   * Accept or reject the point with sequence number `seq`. On acceptance of a full sampler
   * the root is removed from the heap and reported in `evictedRef`. `bound` (prepared for
   * this seq) rejects without the second logarithm when the outcome is certain; the
   * decisions are the plain comparison's.
   */
  decide(seq: number, lambda: number, bound: RejectionBound): boolean {
    let u = this.draw();
    while (u === 0) u = this.draw();
    const decay = -seq * lambda;
    this.evictedRef = -1;
    if (this.size < this.capacity) {
      this.acceptedWeight = weightFor(u, decay, -Math.log(u));
      this.draw(); // the accept draw: always below the accept probability 1, still consumed
      return true;
    }
    const root = this.weight[0]!;
    if (root !== this.boundWeight || bound.epoch !== this.boundEpoch) {
      this.boundWeight = root;
      this.boundEpoch = bound.epoch;
      this.boundBase = bound.base(root);
      // u below this means -ln u > base·maxGrowth (with margin) >= base·growth: reject.
      this.boundU = Math.exp(-this.boundBase * bound.maxGrowth * (1.0 + 1e-9));
    }
    if (u < this.boundU) return false;
    const y = -Math.log(u);
    if (y > this.boundBase * bound.growth) return false;
    const w = weightFor(u, decay, y);
    if (!(w < root)) return false;
    this.evictedRef = this.ref[0]!;
    const last = --this.size;
    this.weight[0] = this.weight[last]!;
    this.ref[0] = this.ref[last]!;
    this.siftDown(0);
    this.acceptedWeight = w;
    return true;
  }

  push(weight: number, ref: number): void {
    const i = this.size++;
    this.weight[i] = weight;
    this.ref[i] = ref;
    this.siftUp(i);
  }

  private swap(i: number, j: number): void {
    const w = this.weight[i]!;
    this.weight[i] = this.weight[j]!;
    this.weight[j] = w;
    const r = this.ref[i]!;
    this.ref[i] = this.ref[j]!;
    this.ref[j] = r;
  }

  // Strict comparisons: ties never move an entry, and the left child wins a tie (§5.5).
  private siftDown(i: number): void {
    const weight = this.weight;
    const size = this.size;
    for (;;) {
      let m = 2 * i + 1;
      if (m >= size) return;
      if (m + 1 < size && weight[m + 1]! > weight[m]!) m++;
      if (!(weight[m]! > weight[i]!)) return;
      this.swap(i, m);
      i = m;
    }
  }

  private siftUp(i: number): void {
    const weight = this.weight;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!(weight[p]! < weight[i]!)) return;
      this.swap(i, p);
      i = p;
    }
  }
}
