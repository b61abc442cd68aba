// java.util.Random, bit for bit (rcf-algorithm.md §3): a 48-bit LCG kept in a u64.

const MULTIPLIER: u64 = 0x5DEECE66D;
const MASK: u64 = 0xFFFFFFFFFFFF;
const TWO_POW_MINUS_53: f64 = 1.0 / 9007199254740992.0;

export class JavaRandom {
  state: u64 = 0;

  /** Equivalent of `new Random(seed)`. */
  @inline setSeed(seed: i64): void {
    this.state = (<u64>seed ^ MULTIPLIER) & MASK;
  }

  @inline private advance(): void {
    // The multiply wraps mod 2^64, which the 48-bit mask makes harmless.
    this.state = (this.state * MULTIPLIER + 0xB) & MASK;
  }

  /** next(32) as a signed int32. */
  @inline nextInt32(): i32 {
    this.advance();
    return <i32>(this.state >> 16);
  }

  /** Uniform double in [0, 1): next(26)·2^27 + next(27), scaled by 2^-53. */
  @inline nextDouble(): f64 {
    this.advance();
    const a = <i64>(this.state >> 22);
    this.advance();
    const b = <i64>(this.state >> 21);
    return <f64>((a << 27) + b) * TWO_POW_MINUS_53;
  }

  @inline nextLong(): i64 {
    const h = this.nextInt32();
    const l = this.nextInt32();
    return (<i64>h << 32) + <i64>l;
  }
}
