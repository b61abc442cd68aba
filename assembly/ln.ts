// Natural logarithms that match Java's Math.log on the reference JVM (rcf-algorithm.md §2.3):
// a correctly rounded ln in double-double arithmetic, for the integer-log table and for
// the rare sampler weights that sit near an f32 rounding boundary.

export const LN2: f64 = 0.6931471805599453;
const LN2_LO: f64 = 2.3190468138462996e-17;
const SPLITTER: f64 = 134217729.0; // 2^27 + 1
const SERIES_TERMS: i32 = 24;

// Double-double results: hi is returned, the low word is left in ddLo.
let ddLo: f64 = 0;

@inline function twoSum(a: f64, b: f64): f64 {
  const s = a + b;
  const v = s - a;
  ddLo = (a - (s - v)) + (b - v);
  return s;
}

function twoProd(a: f64, b: f64): f64 {
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

@inline function quickTwoSum(a: f64, b: f64): f64 {
  const s = a + b;
  ddLo = b - (s - a);
  return s;
}

function ddAdd(ah: f64, al: f64, bh: f64, bl: f64): f64 {
  const s = twoSum(ah, bh);
  const e = ddLo + al + bl;
  return quickTwoSum(s, e);
}

function ddMul(ah: f64, al: f64, bh: f64, bl: f64): f64 {
  const p = twoProd(ah, bh);
  const e = ddLo + (ah * bl + al * bh);
  return quickTwoSum(p, e);
}

function ddDiv(xh: f64, xl: f64, yh: f64, yl: f64): f64 {
  const q1 = xh / yh;
  const p = ddMul(q1, 0, yh, yl);
  const pl = ddLo;
  const rh = ddAdd(xh, xl, -p, -pl);
  const q2 = rh / yh;
  return quickTwoSum(q1, q2);
}

// 1/(2j+1) as double-doubles, for the atanh series; filled on first use.
const RECIP_HI = new StaticArray<f64>(SERIES_TERMS);
const RECIP_LO = new StaticArray<f64>(SERIES_TERMS);
let recipReady = false;

function initReciprocals(): void {
  for (let j = 0; j < SERIES_TERMS; j++) {
    const n = <f64>(2 * j + 1);
    const hi = 1.0 / n;
    const p = twoProd(hi, n);
    unchecked(RECIP_HI[j] = hi);
    unchecked(RECIP_LO[j] = ((1.0 - p) - ddLo) / n);
  }
  recipReady = true;
}

/** Correctly rounded ln(x) for finite x > 0. */
export function lnCorrect(x: f64): f64 {
  if (!recipReady) initReciprocals();
  let e: i32 = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0; // 2^54: bring subnormals into the normal range
    e = -54;
  }
  const bits = reinterpret<u64>(x);
  e += <i32>((bits >> 52) & 0x7ff) - 1023;
  let m = reinterpret<f64>((bits & 0x800FFFFFFFFFFFFF) | 0x3FF0000000000000);
  if (m > 1.4142135623730951) {
    m /= 2;
    e += 1;
  }
  const f = m - 1.0; // exact
  const dh = twoSum(2.0, f);
  const dl = ddLo;
  const sh = ddDiv(f, 0, dh, dl);
  const sl = ddLo;
  const zh = ddMul(sh, sl, sh, sl);
  const zl = ddLo;
  let ph = unchecked(RECIP_HI[SERIES_TERMS - 1]);
  let pl = unchecked(RECIP_LO[SERIES_TERMS - 1]);
  for (let j = SERIES_TERMS - 2; j >= 0; j--) {
    ph = ddMul(ph, pl, zh, zl);
    pl = ddLo;
    ph = ddAdd(unchecked(RECIP_HI[j]), unchecked(RECIP_LO[j]), ph, pl);
    pl = ddLo;
  }
  let rh = ddMul(sh, sl, ph, pl);
  let rl = ddLo;
  rh *= 2;
  rl *= 2;
  if (e != 0) {
    const fe = <f64>e;
    const eh = twoProd(fe, LN2);
    const el = ddLo + fe * LN2_LO;
    rh = ddAdd(rh, rl, eh, el);
    rl = ddLo;
  }
  return rh + rl;
}

/** LN[n] = correctly rounded ln(n) for n = 1..maxN (LN[0] unused). */
export function lnTable(maxN: i32): StaticArray<f64> {
  const table = new StaticArray<f64>(maxN + 1);
  for (let n = 1; n <= maxN; n++) unchecked(table[n] = lnCorrect(<f64>n));
  return table;
}
