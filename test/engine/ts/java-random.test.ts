import { describe, expect, it } from 'vitest';
import { JavaRandom } from '../../../src/engine/ts/java-random.js';
import { seedWords } from '../../../src/forest/options.js';

// Reference outputs of java.util.Random on Java 17 (rcf-algorithm.md §3.3).
const JAVA = [
  { seed: 0n, firstLong: -4962768465676381896n, thenDouble: 0.24053641567148587 },
  { seed: 7n, firstLong: -4967725919621401576n, thenDouble: 0.7491696031336331 },
  { seed: 42n, firstLong: -5025562857975149833n, thenDouble: 0.6832234717598454 },
  { seed: -1n, firstLong: 4961115982468162243n, thenDouble: 0.012269981921235296 },
];

function asBigInt(words: Int32Array): bigint {
  return (BigInt(words[0]!) << 32n) | BigInt(words[1]! >>> 0);
}

function seeded(seed: bigint): JavaRandom {
  const { hi, lo } = seedWords(seed);
  const r = new JavaRandom();
  r.setSeed(hi, lo);
  return r;
}

describe('JavaRandom', () => {
  it.each(JAVA)('reproduces java.util.Random for seed $seed', ({ seed, firstLong, thenDouble }) => {
    const r = seeded(seed);
    const out = new Int32Array(2);
    r.nextLong(out, 0);
    expect(asBigInt(out)).toBe(firstLong);
    expect(r.nextDouble()).toBe(thenDouble);
  });

  it('derives the per-tree seed chain of a forest with seed 7', () => {
    const r = seeded(7n);
    const w = new Int32Array(2);
    const chain: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      r.nextLong(w, 0);
      chain.push(asBigInt(w));
    }
    expect(chain).toEqual([-4967725919621401576n, -4627004027837150407n, 6425179856112732765n, -1894902459288369262n]);
  });

  it('makes the first sampler draw of tree 0 and advances its seed', () => {
    const samplerSeed = new Int32Array(2);
    const { hi, lo } = seedWords(-4627004027837150407n);
    const r = new JavaRandom();
    r.setSeed(hi, lo);
    r.nextLong(samplerSeed, 0);
    expect(r.nextDouble()).toBe(0.552810285512988);
    expect(asBigInt(samplerSeed)).toBe(-8703585555603507481n);
  });

  it('matches a BigInt model of the 48-bit LCG over many steps and seeds', () => {
    const M = 0x5deece66dn;
    const mask = (1n << 48n) - 1n;
    for (const seed of [1n, -123456789012345n, 2n ** 62n + 12345n, -(2n ** 63n)]) {
      let state = (BigInt.asUintN(64, seed) ^ M) & mask;
      const r = seeded(seed);
      for (let i = 0; i < 1000; i++) {
        state = (state * M + 0xbn) & mask;
        expect(r.nextInt32()).toBe(Number(BigInt.asIntN(32, state >> 16n)));
      }
    }
  });
});
