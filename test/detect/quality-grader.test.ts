import { describe, expect, it } from 'vitest';
import { createForestSync } from '../../src/index.js';
import {
  QUALITY_FOREST_DEFAULTS,
  QUALITY_GRADER_DEFAULTS,
  QualityGrader,
  logNormalTail,
  tailEvidence,
  type QualityGraderOptions,
} from '../../src/detect/quality-grader.js';
import { uniform } from '../support/xorshift.js';

/** Approximately normal noise: sum of 12 uniforms, centred. */
function normal(seed: number): () => number {
  const u = uniform(seed);
  return () => {
    let t = -6;
    for (let i = 0; i < 12; i++) t += u();
    return t;
  };
}

interface Graded {
  score: Float64Array;
  grade: Float64Array;
  threshold: Float64Array;
  anomaly: boolean[];
}

/** The detector's protocol on a univariate stream: score, grade, then learn. */
function runStream(values: number[], grader = new QualityGrader(), seed = 7): Graded {
  const forest = createForestSync({ dimensions: 1, ...QUALITY_FOREST_DEFAULTS, randomSeed: seed });
  const scores = forest.process(Float64Array.from(values));
  forest.dispose();
  return gradeScores(Array.from(scores), values, grader);
}

function gradeScores(scores: number[], values: number[], grader: QualityGrader): Graded {
  const n = scores.length;
  const out: Graded = { score: Float64Array.from(scores), grade: new Float64Array(n), threshold: new Float64Array(n), anomaly: [] };
  const v = new Float64Array(1);
  for (let i = 0; i < n; i++) {
    v[0] = values[i] ?? 0;
    const r = grader.grade(scores[i]!, v, scores[i]! > 0);
    out.grade[i] = r.grade;
    out.threshold[i] = r.threshold;
    out.anomaly.push(r.anomaly);
  }
  return out;
}

const alarms = (g: Graded): number[] => g.anomaly.flatMap((a, i) => (a ? [i] : []));

function noisy(n: number, level: number, spread: number, seed: number): number[] {
  const z = normal(seed);
  return Array.from({ length: n }, () => level + spread * z());
}

describe('logNormalTail', () => {
  it('matches known normal tail probabilities, deep into the tail', () => {
    const known: Array<[number, number]> = [
      [0, 0.5],
      [1, 0.15865525393145707],
      [-1, 0.8413447460685429],
      [3, 0.0013498980316300946],
      [5, 2.866515718791939e-7],
      [10, 7.61985302416047e-24],
    ];
    for (const [z, q] of known) expect(Math.exp(logNormalTail(z)) / q - 1).toBeCloseTo(0, 12);
    // Where 1 - Phi(z) underflows, the log is still finite and exact enough.
    expect(logNormalTail(40)).toBeCloseTo(-804.608, 2);
    expect(logNormalTail(-50)).toBe(0);
  });

  it('is continuous where the two methods meet, and evidence is monotone', () => {
    expect(logNormalTail(3 - 1e-12)).toBeCloseTo(logNormalTail(3), 9);
    let previous = -1;
    for (let z = -5; z <= 30; z += 0.01) {
      const e = tailEvidence(z);
      expect(e).toBeGreaterThanOrEqual(previous);
      previous = e;
    }
    expect(tailEvidence(-100)).toBe(0);
  });
});

describe('QualityGrader on synthetic scores', () => {
  it('waits for warmup and never grades unready records', () => {
    const g = new QualityGrader({ warmup: 50 });
    for (let i = 0; i < 10; i++) expect(g.grade(0, [1], false)).toMatchObject({ anomaly: false, grade: 0, threshold: 0 });
    expect(g.scored).toBe(0);
    // Even a huge score during warmup only feeds the statistics.
    for (let i = 0; i < 50; i++) expect(g.grade(i === 20 ? 50 : 1, [1], true).anomaly).toBe(false);
    expect(g.scored).toBe(50);
    expect(g.grade(1, [1], true).threshold).toBeGreaterThan(0);
  });

  it('reads a score of 0 as "not ready", whatever the flag says', () => {
    const g = new QualityGrader();
    g.grade(0, [1], true);
    g.grade(Number.NaN, [1], true);
    expect(g.scored).toBe(0);
  });

  it('gives a constant score stream no alarms and grade 0', () => {
    const g = new QualityGrader();
    for (let i = 0; i < 5000; i++) {
      const r = g.grade(0.8, [1], true);
      expect(r.anomaly).toBe(false);
      // z = 0: a tail probability of 1/2, evidence log10(2), a grade of about 0.025.
      expect(r.grade).toBeLessThan(0.05);
    }
  });

  it('alarms on a clear jump in score with a grade near 1, and reports the crossing threshold', () => {
    const z = normal(3);
    const g = new QualityGrader();
    for (let i = 0; i < 2000; i++) g.grade(1 + 0.05 * z(), [1], true);
    const quiet = g.grade(1, [1], true);
    expect(quiet.anomaly).toBe(false);
    expect(quiet.grade).toBeLessThan(0.2);
    // The short-term mean of 5 must reach mean + alarmZ * deviation: one record at the
    // reported threshold does exactly that.
    const threshold = g.grade(1, [1], true).threshold;
    expect(threshold).toBeGreaterThan(1.5);
    const r = g.grade(12, [1], true);
    expect(r.anomaly).toBe(true);
    expect(r.grade).toBeGreaterThan(0.9);
    expect(r.grade).toBeLessThanOrEqual(1);
  });

  it('alarms exactly when the score reaches its threshold (outside suppression)', () => {
    const z = normal(11);
    const scores = Array.from({ length: 20_000 }, (_, i) => (i % 997 === 500 ? 4 + (i % 7) : 1 + 0.1 * Math.abs(z())));
    const graded = gradeScores(scores, [], new QualityGrader({ suppression: 0 }));
    let alarmsSeen = 0;
    for (let i = 0; i < scores.length; i++) {
      if (graded.threshold[i] === 0) continue;
      if (Math.abs(scores[i]! - graded.threshold[i]!) < 1e-9) continue;
      expect(graded.anomaly[i], `record ${i}`).toBe(scores[i]! >= graded.threshold[i]!);
      expect(graded.anomaly[i]).toBe(graded.grade[i]! >= 0.5);
      if (graded.anomaly[i]) alarmsSeen++;
    }
    expect(alarmsSeen).toBeGreaterThanOrEqual(15);
  });

  it('raises one alarm per incident: repeats inside the suppression period are silenced', () => {
    const g = new QualityGrader({ suppression: 100 });
    const z = normal(5);
    const base = (): number => 1 + 0.05 * z();
    const scores: number[] = [];
    for (let i = 0; i < 1500; i++) scores.push(base());
    // An incident: a burst of high scores over 60 records, then a second one later.
    for (let i = 0; i < 60; i++) scores.push(i % 3 === 0 ? 9 : base());
    for (let i = 0; i < 300; i++) scores.push(base());
    for (let i = 0; i < 5; i++) scores.push(9);
    const graded = gradeScores(scores, [], g);
    const found = alarms(graded);
    expect(found).toHaveLength(2);
    expect(found[0]).toBe(1500);
    expect(found[1]).toBeGreaterThanOrEqual(1860);
    expect(found[1]).toBeLessThan(1865);
    // Inside the incident the grade is 0, not just below the alarm level.
    for (let i = 1501; i <= 1600; i++) expect(graded.grade[i]).toBe(0);
  });

  it('raises the alarm on the outlier itself, not on a record after it', () => {
    const z = normal(17);
    const scores: number[] = [];
    const outliers: number[] = [];
    for (let i = 0; i < 8000; i++) {
      const outlier = i > 1000 && i % 400 === 0;
      if (outlier) outliers.push(i);
      scores.push(outlier ? 5 : 0.8 + 0.05 * z());
    }
    const found = alarms(gradeScores(scores, [], new QualityGrader()));
    expect(found).toEqual(outliers);
    // With the plain short-window mean, the same outliers are not all alarms.
    expect(alarms(gradeScores(scores, [], new QualityGrader({ latestWeight: 0 }))).length).toBeLessThan(outliers.length);
  });

  it('rejects bad and unknown options', () => {
    expect(() => new QualityGrader({ shortWindow: 0 })).toThrow(RangeError);
    expect(() => new QualityGrader({ shortWindow: 2.5 })).toThrow(RangeError);
    expect(() => new QualityGrader({ alarmLevel: 0 })).toThrow(RangeError);
    expect(() => new QualityGrader({ alarmLevel: Number.NaN })).toThrow(RangeError);
    expect(() => new QualityGrader({ minDeviation: -1 })).toThrow(RangeError);
    expect(() => new QualityGrader({ suppression: -1 })).toThrow(RangeError);
    expect(() => new QualityGrader({ minRelativeDeviation: -0.1 })).toThrow(RangeError);
    expect(() => new QualityGrader({ latestWeight: 1.5 })).toThrow(RangeError);
    expect(() => new QualityGrader({ bogus: 1 } as QualityGraderOptions)).toThrow(/unknown quality grader option "bogus"/);
    expect(new QualityGrader().options).toEqual(QUALITY_GRADER_DEFAULTS);
  });
});

describe('QualityGrader behind a forest', () => {
  it('keeps quiet on a flat stream', () => {
    const graded = runStream(new Array<number>(3000).fill(30));
    expect(alarms(graded)).toEqual([]);
    expect(Math.max(...graded.grade)).toBeLessThan(0.5);
  });

  it('keeps quiet on stationary noise, even heavy-tailed noise', () => {
    expect(alarms(runStream(noisy(6000, 30, 1, 1)))).toEqual([]);
    const u = uniform(8);
    const laplace = Array.from({ length: 6000 }, () => {
      const x = u() - 0.5;
      return 30 - Math.sign(x) * Math.log(1 - 2 * Math.abs(x));
    });
    expect(alarms(runStream(laplace)).length).toBeLessThanOrEqual(2);
  });

  it('catches a clear spike with a grade near 1, once', () => {
    const values = noisy(3000, 30, 1, 2);
    values[2000] = 45;
    const graded = runStream(values);
    expect(alarms(graded)).toEqual([2000]);
    expect(graded.grade[2000]).toBeGreaterThan(0.9);
  });

  it('detects a level shift quickly, then adapts to the new level', () => {
    const values = [...noisy(3000, 30, 1, 3), ...noisy(4000, 40, 1, 4)];
    const graded = runStream(values);
    const found = alarms(graded);
    expect(found.length).toBeGreaterThanOrEqual(1);
    expect(found[0]).toBeGreaterThanOrEqual(3000);
    expect(found[0]).toBeLessThan(3005);
    // Once the forest and the statistics have absorbed the new level: normal again.
    expect(found.filter((i) => i >= 4500)).toEqual([]);
    const late = graded.grade.subarray(5000);
    expect(late.reduce((a, b) => a + b, 0) / late.length).toBeLessThan(0.1);
  });

  it('is deterministic', () => {
    const values = noisy(4000, 10, 2, 9);
    values[3000] = 40;
    const a = runStream(values);
    const b = runStream(values);
    expect(Array.from(b.grade)).toEqual(Array.from(a.grade));
    expect(Array.from(b.threshold)).toEqual(Array.from(a.threshold));
    expect(b.anomaly).toEqual(a.anomaly);
  });
});

describe('QualityGrader state', () => {
  const z = normal(21);
  const scores = Array.from({ length: 6000 }, (_, i) => (i % 700 === 350 ? 7 : 0.9 + 0.1 * Math.abs(z())));

  it('continues identically after saveState/restoreState, at any point', () => {
    const reference = gradeScores(scores, [], new QualityGrader({ suppression: 150 }));
    // Before warmup, mid-ring, and inside a suppression period (alarm at 1750 or so).
    for (const at of [0, 3, 57, 1760, 4321]) {
      const g = new QualityGrader({ suppression: 150 });
      const first = gradeScores(scores.slice(0, at), [], g);
      const saved = g.saveState();
      const restored = QualityGrader.restoreState(Float64Array.from(saved));
      expect(Array.from(restored.saveState())).toEqual(Array.from(saved));
      const rest = gradeScores(scores.slice(at), [], restored);
      expect([...first.grade, ...rest.grade]).toEqual(Array.from(reference.grade));
      expect([...first.threshold, ...rest.threshold]).toEqual(Array.from(reference.threshold));
      expect([...first.anomaly, ...rest.anomaly]).toEqual(reference.anomaly);
    }
  });

  it('keeps its options in the state', () => {
    const g = new QualityGrader({
      shortWindow: 3,
      latestWeight: 0.4,
      longHorizon: 500,
      warmup: 20,
      alarmLevel: 4.5,
      suppression: 7,
      minRelativeDeviation: 0.1,
      minDeviation: 0.02,
    });
    expect(QualityGrader.restoreState(g.saveState()).options).toEqual(g.options);
  });

  it('rejects states that are not its own', () => {
    const state = new QualityGrader().saveState();
    expect(() => QualityGrader.restoreState(state.subarray(0, 5))).toThrow(RangeError);
    expect(() => QualityGrader.restoreState(Float64Array.of(99, ...state.subarray(1)))).toThrow(/not a QualityGrader state/);
    const badRing = Float64Array.from(state);
    badRing[13] = 99;
    expect(() => QualityGrader.restoreState(badRing)).toThrow(/ring position/);
    expect(() => QualityGrader.restoreState(Float64Array.of(...state, 0))).toThrow(/values, expected/);
  });
});
