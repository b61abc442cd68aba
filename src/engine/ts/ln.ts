/**
 * Natural logarithms that match Java's `Math.log` on the reference JVM.
 *
 * Java's intrinsic is correctly rounded where V8's fdlibm `Math.log` is not (ln 3 differs
 * in the last bit), so integer logs come from a correctly rounded table and sampler
 * weights fall back to the correctly rounded path when they sit near an f32 rounding
 * boundary (rcf-algorithm.md §2.3).
 */

export const LN2 = 0.6931471805599453;
const LN2_LO = 2.3190468138462996e-17;
const SPLITTER = 134217729; // 2^27 + 1
const SERIES_TERMS = 24;

// Double-double results are returned as hi with the low word in `ddLo`, to avoid allocation.
let ddLo = 0;

function twoSum(a: number, b: number): number {
  const s = a + b;
  const v = s - a;
  ddLo = (a - (s - v)) + (b - v);
  return s;
}

function twoProd(a: number, b: number): number {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  ddLo = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return p;
}

/** Renormalise (a, b) with |a| >= |b|. */
function quickTwoSum(a: number, b: number): number {
  const s = a + b;
  ddLo = b - (s - a);
  return s;
}

function ddAdd(ah: number, al: number, bh: number, bl: number): number {
  const s = twoSum(ah, bh);
  const e = ddLo + al + bl;
  return quickTwoSum(s, e);
}

function ddMul(ah: number, al: number, bh: number, bl: number): number {
  const p = twoProd(ah, bh);
  const e = ddLo + (ah * bl + al * bh);
  return quickTwoSum(p, e);
}

function ddDiv(xh: number, xl: number, yh: number, yl: number): number {
  const q1 = xh / yh;
  // r = x - q1*y in double-double
  const p = ddMul(q1, 0, yh, yl);
  const pl = ddLo;
  const rh = ddAdd(xh, xl, -p, -pl);
  const q2 = rh / yh;
  return quickTwoSum(q1, q2);
}

// 1/(2j+1) as double-doubles, for the atanh series.
const RECIP_HI = new Float64Array(SERIES_TERMS);
const RECIP_LO = new Float64Array(SERIES_TERMS);
for (let j = 0; j < SERIES_TERMS; j++) {
  const n = 2 * j + 1;
  const hi = 1 / n;
  const p = twoProd(hi, n);
  RECIP_HI[j] = hi;
  RECIP_LO[j] = ((1 - p) - ddLo) / n;
}

const bits = new DataView(new ArrayBuffer(8));

/** Correctly rounded ln(x) for finite x > 0 (about a microsecond: for tables and fallbacks). */
export function lnCorrect(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`lnCorrect: argument ${x} must be finite and > 0`);
  let e = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984; // 2^54: bring subnormals into the normal range
    e = -54;
  }
  bits.setFloat64(0, x);
  const hiWord = bits.getUint32(0);
  e += ((hiWord >>> 20) & 0x7ff) - 1023;
  bits.setUint32(0, (hiWord & 0x800fffff) | 0x3ff00000); // mantissa in [1, 2)
  let m = bits.getFloat64(0);
  if (m > Math.SQRT2) {
    m /= 2;
    e += 1;
  }
  const f = m - 1; // exact
  // s = f / (2 + f)
  const dh = twoSum(2, f);
  const dl = ddLo;
  const sh = ddDiv(f, 0, dh, dl);
  const sl = ddLo;
  const zh = ddMul(sh, sl, sh, sl);
  const zl = ddLo;
  // Horner: P = sum z^j / (2j+1)
  let ph = RECIP_HI[SERIES_TERMS - 1]!;
  let pl = RECIP_LO[SERIES_TERMS - 1]!;
  for (let j = SERIES_TERMS - 2; j >= 0; j--) {
    ph = ddMul(ph, pl, zh, zl);
    pl = ddLo;
    ph = ddAdd(RECIP_HI[j]!, RECIP_LO[j]!, ph, pl);
    pl = ddLo;
  }
  // ln m = 2 s P
  let rh = ddMul(sh, sl, ph, pl);
  let rl = ddLo;
  rh *= 2;
  rl *= 2;
  if (e !== 0) {
    const eh = twoProd(e, LN2);
    const el = ddLo + e * LN2_LO;
    rh = ddAdd(rh, rl, eh, el);
    rl = ddLo;
  }
  return rh + rl;
}

/** LN[n] = correctly rounded ln(n), for n = 0..maxN (LN[0] unused). */
export function lnTable(maxN: number): Float64Array {
  const table = new Float64Array(maxN + 1);
  for (let n = 1; n <= maxN; n++) table[n] = lnCorrect(n);
  return table;
}
