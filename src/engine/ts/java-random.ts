/**
 * java.util.Random, bit for bit, without BigInt.
 *
 * The 48-bit LCG state is kept as two 24-bit halves in ordinary numbers so every
 * product stays below 2^53 and is exact (rcf-algorithm.md §3.3). 64-bit seeds travel
 * as (hi32, lo32) pairs, because a JS number cannot hold a Java long.
 */

const TWO24 = 16777216;
const M_HI = 0x5de; // multiplier 0x5DEECE66D = M_HI * 2^24 + M_LO
const M_LO = 0xece66d;
const TWO_POW_MINUS_53 = 1 / 9007199254740992;

export class JavaRandom {
  private sh = 0; // state bits 24..47
  private sl = 0; // state bits 0..23

  /** Equivalent of `new Random(seed)` for the Java long hi32·2^32 + lo32. */
  setSeed(hi32: number, lo32: number): void {
    const lo = ((lo32 ^ 0xdeece66d) >>> 0);
    const hi16 = ((hi32 ^ 0x5) & 0xffff);
    this.sh = hi16 * 256 + (lo >>> 24);
    this.sl = lo & 0xffffff;
  }

  /** next(32) as a signed int32. */
  nextInt32(): number {
    this.advance();
    return (this.sh * 256 + Math.floor(this.sl / 65536)) | 0;
  }

  /** Uniform double in [0, 1): next(26)·2^27 + next(27), scaled by 2^-53. */
  nextDouble(): number {
    this.advance();
    const a = this.sh * 4 + Math.floor(this.sl / 4194304);
    this.advance();
    const b = this.sh * 8 + Math.floor(this.sl / 2097152);
    return (a * 134217728 + b) * TWO_POW_MINUS_53;
  }

  /** nextLong() written into out[at] (hi32, signed) and out[at+1] (lo32, as int32 bits). */
  nextLong(out: Int32Array, at: number): void {
    const h = this.nextInt32();
    const l = this.nextInt32();
    out[at] = (h - (l < 0 ? 1 : 0)) | 0;
    out[at + 1] = l;
  }

  private advance(): void {
    const sl = this.sl;
    const lo = sl * M_LO + 11;
    const carry = Math.floor(lo / TWO24);
    this.sl = lo - carry * TWO24;
    // Below 2^53 and non-negative, so floor(x / 2^24) is exact and x mod 2^24 is x less
    // that many 2^24: the same value as %, which V8 compiles to a call on doubles.
    const x = this.sh * M_LO + sl * M_HI + carry;
    this.sh = x - Math.floor(x / TWO24) * TWO24;
  }
}
