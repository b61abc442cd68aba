import { JavaRandom } from './java-random';
import { lnCorrect } from './ln';

const TWO_POW_MINUS_48: f64 = 1.0 / 281474976710656.0;
/** Updates per epoch of the rejection bound; shorter epochs keep maxGrowth near 1. */
const EPOCH: i64 = 256;

/**
 * A shared, conservative bound that lets full samplers reject without the second log.
 * With W the root weight, reject ⇐ w > W ⇐ -ln u > exp(W - decay). The exponent splits
 * into a per-sampler part exp(W + refSeq·λ), recomputed only when W or the epoch changes,
 * and a per-update factor exp((seq - refSeq)·λ) computed once for all trees. The 1e-9
 * margin dwarfs every rounding error of exp, log and the sums (all below 1e-13 relative
 * while |decay| < 1e6; beyond that the bound is disabled).
 */
export class RejectionBound {
  epoch: i32 = 0;
  refSeq: i64 = 0;
  growth: f64 = 0;
  /** The largest growth within an epoch, exp(EPOCH·λ): lets a sampler reject on u alone. */
  maxGrowth: f64 = 0;
  lambda: f64 = 0;

  /** Sets the factor for update `seq`; starts a new epoch every EPOCH updates. */
  prepare(seq: i64, lambda: f64): void {
    this.lambda = lambda;
    if (seq - this.refSeq >= EPOCH || seq < this.refSeq) {
      this.refSeq = seq;
      this.epoch++;
    }
    // Disabled (never rejects early) when |decay| is too large for the margin.
    const enabled = Math.abs(<f64>seq * lambda) < 1e6;
    this.growth = enabled ? Math.exp(<f64>(seq - this.refSeq) * lambda) : Infinity;
    this.maxGrowth = enabled ? Math.exp(<f64>EPOCH * lambda) : Infinity;
  }

  /** The per-sampler part for root weight w, with the margin. */
  base(w: f32): f64 {
    return Math.exp(<f64>w + <f64>this.refSeq * this.lambda) * (1.0 + 1e-9);
  }
}

// Time-decayed compact sampler of one tree (rcf-algorithm.md §5): a max-heap on f32
// weights whose root is the next entry to evict. Entries point at the tree's leaves.
export class Sampler {
  readonly weight: StaticArray<f32>;
  readonly ref: StaticArray<i32>;
  size: i32 = 0;
  /** Current sampler seed (a Java long). */
  seed: i64 = 0;
  /** Set by decide(): the accepted point's weight and the evicted entry's ref (-1: none). */
  acceptedWeight: f32 = 0;
  evictedRef: i32 = -1;
  // The rejection bound's per-sampler part, for the root weight it was computed for.
  private boundWeight: f32 = NaN;
  private boundEpoch: i32 = -1;
  private boundBase: f64 = 0;
  private boundU: f64 = 0;

  constructor(readonly capacity: i32, private readonly rng: JavaRandom) {
    this.weight = new StaticArray<f32>(capacity);
    this.ref = new StaticArray<i32>(capacity);
  }

  /** One sampler uniform: a fresh generator from the seed, which then moves on (§3.2). */
  private draw(): f64 {
    const rng = this.rng;
    rng.setSeed(this.seed);
    this.seed = rng.nextLong();
    return rng.nextDouble();
  }

  /** F(((-seq)·λ) + ln(-ln u)) with Java's logs (§5.2, §2.3 rule 3). */
  private weightFor(u: f64, decay: f64, y: f64): f32 {
    const inner = Math.log(y);
    const w = decay + inner;
    const tol = TWO_POW_MINUS_48 * (1.0 + Math.abs(decay) + Math.abs(inner));
    if (<f32>(w - tol) != <f32>(w + tol)) {
      return <f32>(decay + lnCorrect(-lnCorrect(u)));
    }
    return <f32>w;
  }

  /**
   * Accept or reject the point with sequence number seq. Accepting into a full sampler
   * removes the root from the heap and reports it in evictedRef.
   *
   * `rejectAbove` is the forest's bound exp(W - decay)·(1 + 1e-9) for a root weight W
   * (see RejectionBound): when -ln u exceeds it, w is certainly above the root's weight,
   * so the point is rejected without the second logarithm. Decisions are unchanged.
   */
  decide(seq: i64, lambda: f64, bound: RejectionBound): bool {
    let u = this.draw();
    while (u == 0) u = this.draw();
    const decay = <f64>(-seq) * lambda;
    this.evictedRef = -1;
    if (this.size < this.capacity) {
      this.acceptedWeight = this.weightFor(u, decay, -Math.log(u));
      this.draw(); // the accept draw: always below the accept probability 1, still consumed
      return true;
    }
    const root = unchecked(this.weight[0]);
    if (root != this.boundWeight || bound.epoch != this.boundEpoch) {
      this.boundWeight = root;
      this.boundEpoch = bound.epoch;
      this.boundBase = bound.base(root);
      // u below this means -ln u > base·maxGrowth (with margin) >= base·growth: reject.
      this.boundU = Math.exp(-this.boundBase * bound.maxGrowth * (1.0 + 1e-9));
    }
    if (u < this.boundU) return false;
    const y = -Math.log(u);
    if (y > this.boundBase * bound.growth) return false;
    const w = this.weightFor(u, decay, y);
    if (!(w < root)) return false;
    this.evictedRef = unchecked(this.ref[0]);
    const last = --this.size;
    unchecked(this.weight[0] = this.weight[last]);
    unchecked(this.ref[0] = this.ref[last]);
    this.siftDown(0);
    this.acceptedWeight = w;
    return true;
  }

  push(weight: f32, ref: i32): void {
    const i = this.size++;
    unchecked(this.weight[i] = weight);
    unchecked(this.ref[i] = ref);
    this.siftUp(i);
  }

  @inline private swap(i: i32, j: i32): void {
    const weight = this.weight;
    const ref = this.ref;
    const w = unchecked(weight[i]);
    unchecked(weight[i] = weight[j]);
    unchecked(weight[j] = w);
    const r = unchecked(ref[i]);
    unchecked(ref[i] = ref[j]);
    unchecked(ref[j] = r);
  }

  // Strict comparisons: ties never move an entry, and the left child wins a tie (§5.5).
  private siftDown(i: i32): void {
    const weight = this.weight;
    const size = this.size;
    while (true) {
      let m = 2 * i + 1;
      if (m >= size) return;
      if (m + 1 < size && unchecked(weight[m + 1]) > unchecked(weight[m])) m++;
      if (!(unchecked(weight[m]) > unchecked(weight[i]))) return;
      this.swap(i, m);
      i = m;
    }
  }

  private siftUp(i: i32): void {
    const weight = this.weight;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!(unchecked(weight[p]) < unchecked(weight[i]))) return;
      this.swap(i, p);
      i = p;
    }
  }

  memoryBytes(): i32 {
    return this.capacity * 8;
  }
}
