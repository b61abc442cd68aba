import { describe, expect, it } from 'vitest';
import { explain } from '../../src/detect/explanation.js';
import { createForest } from '../../src/index.js';

describe('explain (KDA RANDOM_CUT_FOREST_WITH_EXPLANATION shape)', () => {
  it('gives each field ATTRIBUTION_SCORE, STRENGTH and DIRECTION', () => {
    const e = explain(['a', 'b'], 1, [3, 0], [1, 0.5]);
    expect(e).toEqual({
      a: { ATTRIBUTION_SCORE: 4, STRENGTH: 4 / 4.5, DIRECTION: 'HIGH' },
      b: { ATTRIBUTION_SCORE: 0.5, STRENGTH: 0.5 / 4.5, DIRECTION: 'LOW' },
    });
  });

  it('sums a field over all shingle blocks (oldest block first)', () => {
    // Two fields, shingle 3: coordinates are [a0, b0, a1, b1, a2, b2].
    const high = [1, 0, 2, 0, 4, 0.25];
    const low = [0, 1, 0, 1, 0, 1];
    const e = explain(['a', 'b'], 3, high, low);
    expect(e.a!.ATTRIBUTION_SCORE).toBe(7);
    expect(e.b!.ATTRIBUTION_SCORE).toBe(3.25);
    expect(e.b!.DIRECTION).toBe('LOW');
    expect(e.a!.STRENGTH + e.b!.STRENGTH).toBeCloseTo(1, 15);
  });

  it('reads from an offset (one record of a batch)', () => {
    const e = explain(['v'], 1, [9, 9, 2], [9, 9, 3], 2);
    expect(e.v).toEqual({ ATTRIBUTION_SCORE: 5, STRENGTH: 1, DIRECTION: 'LOW' });
  });

  it('gives strength 0 when nothing is attributed (warm-up)', () => {
    expect(explain(['v'], 1, [0], [0]).v).toEqual({ ATTRIBUTION_SCORE: 0, STRENGTH: 0, DIRECTION: 'HIGH' });
  });

  it('keeps a field called __proto__ as a field', () => {
    const e = explain(['__proto__'], 1, [1], [0]);
    expect(Object.keys(e)).toEqual(['__proto__']);
    expect(JSON.stringify(e)).toBe('{"__proto__":{"ATTRIBUTION_SCORE":1,"STRENGTH":1,"DIRECTION":"HIGH"}}');
  });

  it('points at the field and direction of a real outlier, and adds up to the score', async () => {
    const forest = await createForest({ dimensions: 2, randomSeed: 3, engine: 'ts' });
    for (let i = 0; i < 300; i++) forest.update([10 + (i % 7) * 0.1, 50 + (i % 5) * 0.1]);
    const point = [10.3, 20];
    const score = forest.score(point);
    const a = forest.attribution(point);
    const e = explain(['x', 'y'], 1, a.high, a.low);
    expect(e.y!.DIRECTION).toBe('LOW');
    expect(e.y!.STRENGTH).toBeGreaterThan(0.9);
    expect(e.x!.ATTRIBUTION_SCORE + e.y!.ATTRIBUTION_SCORE).toBeCloseTo(score, 6);
  });
});
