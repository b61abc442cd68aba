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
  const decay = -seq * lambda;
  const inner = Math.log(-Math.log(u));
  const w = decay + inner;
  const tol = TWO_POW_MINUS_48 * (1 + Math.abs(decay) + Math.abs(inner));
  if (Math.fround(w - tol) !== Math.fround(w + tol)) {
    weightFallbacks.count++;
    return Math.fround(decay + lnCorrect(-lnCorrect(u)));
  }
  return Math.fround(w);
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

  private weightOf(seq: number, lambda: number): number {
    let u = this.draw();
    while (u === 0) u = this.draw();
    return samplerWeight(u, seq, lambda);
  }

  /**
   * Accept or reject the point with sequence number `seq`. (The WASM kernel adds a bound
   * that rejects without the second logarithm when the outcome is certain; the decisions
   * are the same.) On acceptance of a full
   * sampler the root is removed from the heap and reported in `evictedRef`.
   */
  decide(seq: number, lambda: number): boolean {
    const w = this.weightOf(seq, lambda);
    this.evictedRef = -1;
    if (this.size < this.capacity) {
      this.draw(); // the accept draw: always below the accept probability 1, still consumed
      this.acceptedWeight = w;
      return true;
    }
    if (!(w < this.weight[0]!)) return false;
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
