import { beforeAll, describe, expect, it } from 'vitest';
import { createForest } from '../../src/index.js';
import { TrcfThresholder } from '../../src/detect/thresholder.js';
import { loadVectorSet, type VectorSet } from '../support/vectors.js';

interface Run {
  score: Float64Array;
  grade: Float64Array;
  threshold: Float64Array;
}

/** The AWS per-record protocol with our thresholder: score (batched; same results), then grade. */
async function runTrcf(set: VectorSet, restoreAt?: number): Promise<Run> {
  const c = set.config;
  const forest = await createForest({
    dimensions: c.baseDimensions,
    shingleSize: c.shingleSize,
    numberOfTrees: c.numberOfTrees,
    sampleSize: c.sampleSize,
    randomSeed: c.randomSeed,
  });
  const scores = forest.process(set.inputs);
  forest.dispose();
  let t = new TrcfThresholder({ dimensions: c.baseDimensions, shingleSize: c.shingleSize, timeDecay: c.timeDecay });
  const out: Run = { score: new Float64Array(c.rows), grade: new Float64Array(c.rows), threshold: new Float64Array(c.rows) };
  const b = c.baseDimensions;
  for (let i = 0; i < c.rows; i++) {
    if (i === restoreAt) t = TrcfThresholder.restoreState(t.saveState());
    const r = t.grade(scores[i]!, set.inputs.subarray(i * b, i * b + b), scores[i] !== 0);
    out.score[i] = r.score ?? scores[i]!;
    out.grade[i] = r.grade;
    out.threshold[i] = r.threshold;
  }
  return out;
}

function mismatches(ours: Float64Array, theirs: Float64Array, from = 0, to = ours.length): number[] {
  const rows: number[] = [];
  for (let i = from; i < to; i++) if (ours[i] !== theirs[i]) rows.push(i);
  return rows;
}

describe('TrcfThresholder against AWS ThresholdedRandomCutForest vectors', () => {
  describe('temp_trcf_t50_s1 (shingle 1: must match completely)', () => {
    let set: VectorSet;
    let run: Run;
    beforeAll(async () => {
      set = loadVectorSet('temp_trcf_t50_s1');
      run = await runTrcf(set);
    });

    it('matches score, grade and threshold on every row', () => {
      expect(set.config.rows).toBe(30_000);
      expect(mismatches(run.score, set.score)).toEqual([]);
      expect(mismatches(run.grade, set.grade!)).toEqual([]);
      expect(mismatches(run.threshold, set.threshold!)).toEqual([]);
    });

    it('really grades: the library flags some records and so do we', () => {
      const graded = set.grade!.filter((g) => g > 0).length;
      expect(graded).toBeGreaterThan(100);
      expect(run.grade.filter((g) => g > 0).length).toBe(graded);
    });

    it('continues identically after a save/restore of its state mid-stream', async () => {
      const restored = await runTrcf(set, 12_345);
      expect(mismatches(restored.grade, run.grade)).toEqual([]);
      expect(mismatches(restored.threshold, run.threshold)).toEqual([]);
    });
  });

  describe('temp_trcf_t50_s4 (shingle 4: phase-2 corrections not implemented, rcf-algorithm.md §8.6)', () => {
    let set: VectorSet;
    let run: Run;
    const DIVERGENCE = 748;
    beforeAll(async () => {
      set = loadVectorSet('temp_trcf_t50_s4');
      run = await runTrcf(set);
    });

    it('matches every score', () => {
      expect(mismatches(run.score, set.score)).toEqual([]);
    });

    it('matches thresholds at least until record 748 and in at least 35,311 of 50,000 rows (the documented drift, §8.6)', () => {
      // The documented bound, not today's exact row: implementing the phase-2
      // corrections would move the divergence later (or remove it) and must not fail this.
      const bad = mismatches(run.threshold, set.threshold!);
      expect(bad[0] ?? set.config.rows).toBeGreaterThanOrEqual(DIVERGENCE);
      expect(set.config.rows - bad.length).toBeGreaterThanOrEqual(35_311);
    });

    it('while thresholds agree, our positives are a superset of the library’s, with equal grades where both are positive', () => {
      let ours = 0;
      let theirs = 0;
      for (let i = 0; i < DIVERGENCE; i++) {
        const g = run.grade[i]!;
        const ref = set.grade![i]!;
        if (g > 0) ours++;
        if (ref > 0) {
          theirs++;
          expect(g, `row ${i}`).toBe(ref);
        }
      }
      // Measured: the library suppresses repeats while an outlier travels through the shingle.
      expect(theirs).toBe(6);
      expect(ours).toBe(17);
    });
  });
});

describe('TrcfThresholder rules', () => {
  const values = [30];

  it('reports score 0, grade 0 and threshold 0 for the first 10 records, whatever the forest scored', () => {
    const t = new TrcfThresholder({ dimensions: 1 });
    for (let i = 0; i < 10; i++) {
      const r = t.grade(5, values, true);
      expect(r).toMatchObject({ score: 0, grade: 0, threshold: 0, anomaly: false });
    }
    expect(t.grade(5, values, true).score).toBeUndefined();
  });

  it('leaves its statistics alone while the forest is not ready', () => {
    const t = new TrcfThresholder({ dimensions: 1 });
    for (let i = 0; i < 10; i++) t.grade(0, values, false);
    const before = t.saveState();
    const r = t.grade(0, values, false);
    expect(r).toMatchObject({ grade: 0, threshold: 0, anomaly: false });
    const after = t.saveState();
    // Only the call counter (index 4) and the shingle may move.
    expect(after[4]).toBe(before[4]! + 1);
    expect(after[5]).toBe(0);
    expect(Array.from(after.subarray(5, 22))).toEqual(Array.from(before.subarray(5, 22)));
  });

  it('uses the initial threshold 1.5 for the first scored records and grades above it fully', () => {
    const t = new TrcfThresholder({ dimensions: 1 });
    for (let i = 0; i < 10; i++) t.grade(0, values, false);
    expect(t.grade(1.2, values, true)).toMatchObject({ threshold: 1.5, grade: 0, anomaly: false });
    // Not ready: grade = floor(20 * min(1, (score - 0.8) / 0.8)) / 16, capped at 1.
    expect(t.grade(1.6, values, true)).toMatchObject({ threshold: 1.5, grade: 1, anomaly: true });
  });

  it('never grades a shingle whose values are all within 0.001 of zero (NOISE)', () => {
    const quiet = new TrcfThresholder({ dimensions: 1 });
    for (let i = 0; i < 10; i++) quiet.grade(0, [0], false);
    expect(quiet.grade(3, [0.0009], true)).toMatchObject({ grade: 0, anomaly: false });

    // One value above the noise level anywhere in the shingle is enough to grade.
    const shingled = new TrcfThresholder({ dimensions: 1, shingleSize: 2 });
    for (let i = 0; i < 9; i++) shingled.grade(0, [0], false);
    shingled.grade(0, [0.5], false);
    expect(shingled.grade(3, [0.0009], true)).toMatchObject({ grade: 1, anomaly: true });
  });

  it('refuses a state of another layout', () => {
    const state = new TrcfThresholder({ dimensions: 2, shingleSize: 3 }).saveState();
    expect(() => TrcfThresholder.restoreState(state.subarray(0, state.length - 1))).toThrow(RangeError);
    const wrongVersion = Float64Array.from(state);
    wrongVersion[0] = 99;
    expect(() => TrcfThresholder.restoreState(wrongVersion)).toThrow(/version/);
  });
});
