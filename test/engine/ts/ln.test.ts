import { describe, expect, it } from 'vitest';
import { LN2, lnCorrect, lnTable } from '../../../src/engine/ts/ln.js';
import { samplerWeight, weightFallbacks } from '../../../src/engine/ts/sampler.js';

function bitsOf(x: number): string {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  return v.getBigUint64(0).toString(16).toUpperCase();
}

describe('lnCorrect', () => {
  it('gives the correctly rounded check values of the spec', () => {
    expect(bitsOf(lnCorrect(2))).toBe('3FE62E42FEFA39EF');
    expect(bitsOf(lnCorrect(3))).toBe('3FF193EA7AAD030B'); // fdlibm (V8 Math.log) is one ulp below
    expect(bitsOf(lnCorrect(48))).toBe('400EF8383C50BB75');
    expect(bitsOf(lnCorrect(257))).toBe('40163241004E9011');
    expect(lnCorrect(2)).toBe(LN2);
    expect(lnCorrect(1)).toBe(0);
  });

  it('is within half an ulp of a BigInt fixed-point reference on sampled arguments', () => {
    // Reference: ln(x) = 2·atanh((x-1)/(x+1)) in 200-bit fixed point, for x = n/1024.
    const P = 200n;
    const ONE = 1n << P;
    const ln2Fixed = (() => {
      // ln 2 = 2·atanh(1/3)
      const s = ONE / 3n;
      let term = s;
      let sum = 0n;
      for (let k = 1n; term !== 0n; k += 2n) {
        sum += term / k;
        term = (term * s * s) / ONE / ONE;
      }
      return 2n * sum;
    })();
    const lnRatio = (num: bigint, den: bigint): bigint => {
      let e = 0n;
      while (num >= 2n * den) { den *= 2n; e++; }
      while (num < den) { num *= 2n; e--; }
      const s = ((num - den) * ONE) / (num + den);
      let term = s;
      let sum = 0n;
      for (let k = 1n; term !== 0n; k += 2n) {
        sum += term / k;
        term = (term * s * s) / ONE / ONE;
      }
      return 2n * sum + e * ln2Fixed;
    };
    for (let n = 1; n < 5000; n += 7) {
      const x = n / 1024;
      const got = lnCorrect(x);
      const exact = lnRatio(BigInt(n), 1024n);
      // |got - exact| in units of 2^-P must be <= half an ulp of got
      let e = 0;
      let scaled = got;
      while (!Number.isInteger(scaled)) { scaled *= 2; e++; }
      const gotFixed = (BigInt(scaled) << P) >> BigInt(e);
      const ulp = Math.abs(got) > 0 ? 2 ** (Math.floor(Math.log2(Math.abs(got))) - 52) : 2 ** -1074;
      const err = Number(gotFixed - exact) / Number(ONE);
      expect(Math.abs(err)).toBeLessThanOrEqual(ulp / 2 + ulp * 1e-3);
    }
  });

  it('fills the integer table', () => {
    const t = lnTable(257);
    expect(t[3]).toBe(lnCorrect(3));
    expect(t[257]).toBe(5.54907608489522);
    expect(t.length).toBe(258);
  });
});

describe('samplerWeight', () => {
  it('gives the first weight of the spec (sampler 0, forest seed 7, S 256)', () => {
    const f = new Float32Array([samplerWeight(0.552810285512988, 0, 1 / 2560)]);
    expect(new Uint32Array(f.buffer)[0]!.toString(16)).toBe('bf05e33f');
  });

  it('takes the correctly rounded path when w sits on an f32 rounding boundary', () => {
    const u = 0.3;
    const inner = Math.log(-Math.log(u));
    // An f32 midpoint near inner, then λ chosen so decay + inner lands on it.
    const a = Math.fround(inner);
    const f = new Float32Array([a]);
    const i = new Int32Array(f.buffer);
    i[0]! += 1;
    const mid = (a + f[0]!) / 2;
    const seq = 1000;
    const lambda = (inner - mid) / seq;
    const before = weightFallbacks.count;
    const w = samplerWeight(u, seq, lambda);
    expect(weightFallbacks.count).toBe(before + 1);
    expect(w).toBe(Math.fround(-seq * lambda + lnCorrect(-lnCorrect(u))));
  });

  it('stays on the fast path away from boundaries', () => {
    const before = weightFallbacks.count;
    for (let k = 1; k < 1000; k++) samplerWeight(k / 1000, k, 1 / 2560);
    expect(weightFallbacks.count - before).toBeLessThan(3);
  });
});
