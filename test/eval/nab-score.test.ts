import { describe, expect, it } from 'vitest';

import {
  NAB_NEVER_DETECT_THRESHOLD,
  NAB_PROFILES,
  type NabProfile,
  type ScoredSeries,
  evaluateCorpus,
  normalisedScore,
  optimiseThreshold,
  probationLength,
  scaledSigmoid,
  scoreSeriesAt,
} from '../../src/eval/nab-score.js';

const [STANDARD, LOW_FP, LOW_FN] = NAB_PROFILES as [NabProfile, NabProfile, NabProfile];
const MINUTE = 60_000;
const T0 = Date.UTC(2014, 3, 1);

/**
 * 100 one-minute rows, so probation = floor(0.15 * 100) = 15 rows (0..14).
 * Windows are given as inclusive row ranges.
 */
function series(
  name: string,
  windowRows: Array<[number, number]>,
  detections: Record<number, number>,
  rows = 100,
): ScoredSeries {
  const timestamps = Array.from({ length: rows }, (_, i) => T0 + i * MINUTE);
  const scores = new Float64Array(rows);
  for (const [row, score] of Object.entries(detections)) scores[Number(row)] = score;
  return {
    name,
    timestamps,
    windows: windowRows.map(([a, b]) => [T0 + a * MINUTE, T0 + b * MINUTE] as [number, number]),
    scores,
  };
}

/** One 10-row window, rows 40..49 (W = 10); detections get score 1, threshold 0.5. */
const oneWindow = (rows: number[]) =>
  scoreSeriesAt(series('s.csv', [[40, 49]], Object.fromEntries(rows.map((r) => [r, 1]))), 0.5, STANDARD);

describe('NAB building blocks', () => {
  it('probation is min(floor(0.15 * rows), 0.15 * 5000)', () => {
    expect(probationLength(100)).toBe(15);
    expect(probationLength(1882)).toBe(282); // floor(282.3)
    expect(probationLength(4032)).toBe(604); // floor(604.8)
    expect(probationLength(5000)).toBe(750);
    expect(probationLength(22695)).toBe(750); // capped
  });

  it('scaled sigmoid is 2/(1+exp(5y)) - 1, and -1 from y = 3 on', () => {
    // 2/(1+e^-5) - 1 = tanh(2.5) = 0.98661429815143
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661429815143, 13);
    // tanh(1.25) = 0.84828363995751
    expect(scaledSigmoid(-0.5)).toBeCloseTo(0.84828363995751, 13);
    expect(scaledSigmoid(0)).toBe(0);
    expect(scaledSigmoid(1)).toBeCloseTo(-0.98661429815143, 13);
    // just below 3 the formula still applies: -tanh(7.4975) = -(1 - 2/(e^14.995 + 1))
    // = -(1 - 2/3252700) = -0.9999993851
    expect(scaledSigmoid(2.999)).toBeCloseTo(-0.9999993851, 9);
    expect(scaledSigmoid(3)).toBe(-1);
    expect(scaledSigmoid(50)).toBe(-1);
  });
});

describe('scoreSeriesAt (standard profile: A_TP 1, A_FP 0.11, A_FN 1)', () => {
  it('rewards a detection at the first row of a window with exactly A_TP', () => {
    // y = -(49 - 40 + 1)/10 = -1, reward = S(-1)/S(-1) = 1
    const r = oneWindow([40]);
    expect(r.raw).toBe(1);
    expect(r).toMatchObject({ tp: 1, fn: 0, fp: 0, detections: [40] });
  });

  it('rewards a detection in the middle of a window less', () => {
    // row 45: y = -(49 - 45 + 1)/10 = -0.5, reward = tanh(1.25)/tanh(2.5) = 0.84828364/0.98661430 = 0.85979257
    expect(oneWindow([45]).raw).toBeCloseTo(0.8597925669, 9);
  });

  it('rewards a detection at the last row of a window little', () => {
    // row 49: y = -1/10, reward = tanh(0.25)/tanh(2.5) = 0.24491866/0.98661430 = 0.24824155
    expect(oneWindow([49]).raw).toBeCloseTo(0.2482415498, 9);
  });

  it('counts two detections in one window once, at the earlier one', () => {
    // row 42: y = -(49 - 42 + 1)/10 = -0.8, reward = tanh(2)/tanh(2.5) = 0.96402758/0.98661430 = 0.97710684
    const r = oneWindow([42, 47]);
    expect(r.raw).toBeCloseTo(0.9771068409, 9);
    expect(r).toMatchObject({ tp: 1, fn: 0, fp: 0, detections: [42] });
    // NAB's row counts: 2 detected window rows, 8 undetected ones, 100 - 15 - 10 = 75 quiet rows outside
    expect(r.rowCounts).toEqual({ tp: 2, fn: 8, fp: 0, tn: 75 });
  });

  it('charges a miss A_FN', () => {
    const r = oneWindow([]);
    expect(r.raw).toBe(-1);
    expect(r).toMatchObject({ tp: 0, fn: 1, fp: 0, detections: [] });
  });

  it('charges a false positive right after a window little', () => {
    // row 50: y = (50 - 49)/(10 - 1) = 1/9, cost = 0.11 * S(1/9) = -0.11 * tanh(2.5/9) = -0.11 * 0.27084712
    // = -0.02979318; plus the missed window: -1.02979318
    const r = oneWindow([50]);
    expect(r.raw).toBeCloseTo(-1.0297931830, 9);
    expect(r).toMatchObject({ tp: 0, fn: 1, fp: 1, detections: [50] });
  });

  it('charges a false positive two window-widths after it almost fully', () => {
    // row 70: y = 21/9 = 2.333 < 3, cost = -0.11 * tanh(5.8333) = -0.11 * 0.99998285 = -0.10999811
    expect(oneWindow([70]).raw).toBeCloseTo(-1.1099981135, 9);
  });

  it('charges a false positive far after a window the full A_FP', () => {
    // row 80: y = 31/9 = 3.44 >= 3, cost = -0.11
    expect(oneWindow([80]).raw).toBeCloseTo(-1.11, 12);
  });

  it('charges a false positive before the first window the full A_FP', () => {
    // row 20 (after probation, before the window): cost = -0.11, plus the miss
    const r = oneWindow([20]);
    expect(r.raw).toBeCloseTo(-1.11, 12);
    expect(r.detections).toEqual([20]);
  });

  it('measures a false positive from the closest preceding window', () => {
    // windows 30..39 (W 10) and 60..64 (W 5), both detected at their first rows (+1 each);
    // FP at row 66: y = (66 - 64)/(5 - 1) = 0.5, cost = -0.11 * tanh(1.25) = -0.11 * 0.84828364 = -0.09331120
    const r = scoreSeriesAt(series('s.csv', [[30, 39], [60, 64]], { 30: 1, 60: 1, 66: 1 }), 0.5, STANDARD);
    expect(r.raw).toBeCloseTo(2 - 0.0933112004, 9);
    expect(r).toMatchObject({ tp: 2, fn: 0, fp: 1, detections: [30, 60, 66] });
  });

  it('ignores detections inside the probation period', () => {
    // rows 0, 5 and 14 are in probation (15 rows): nothing counts, the window is missed
    const r = oneWindow([0, 5, 14]);
    expect(r.raw).toBe(-1);
    expect(r).toMatchObject({ tp: 0, fn: 1, fp: 0, detections: [] });
    // row 15 is the first scored row: a full-cost false positive
    expect(oneWindow([15]).raw).toBeCloseTo(-1.11, 12);
  });

  it('measures positions in rows, even where timestamps repeat or step back', () => {
    // Like NAB's real files around clock changes: row 20 repeats row 19's time, and from row 60
    // on the clock is 30 minutes behind. Window 40..49 is unaffected; a FP at row 60 is
    // 11 rows past it: y = 11/9, cost = -0.11 * tanh(2.5 * 11/9) = -0.11 * 0.99557365 = -0.10951310
    const s = series('s.csv', [[40, 49]], { 60: 1 });
    const timestamps = s.timestamps as number[];
    timestamps[20] = timestamps[19]!;
    for (let i = 60; i < 100; i++) timestamps[i] = timestamps[i]! - 30 * MINUTE;
    const r = scoreSeriesAt(s, 0.5, STANDARD);
    expect(r.raw).toBeCloseTo(-1.1095131013, 9);
    expect(r).toMatchObject({ tp: 0, fn: 1, fp: 1, detections: [60] });
    // and a detection at the window's first row still earns exactly A_TP
    const early = { ...s, scores: Float64Array.from(s.scores, (_, i) => (i === 40 ? 1 : 0)) };
    expect(scoreSeriesAt(early, 0.5, STANDARD).raw).toBe(1);
  });

  it('detects at score >= threshold', () => {
    const s = series('s.csv', [[40, 49]], { 40: 0.7 });
    expect(scoreSeriesAt(s, 0.7, STANDARD).raw).toBe(1);
    expect(scoreSeriesAt(s, 0.7000001, STANDARD).raw).toBe(-1);
  });

  it('applies each profile\'s weights', () => {
    // a miss and a far false positive: -A_FN - A_FP
    const s = series('s.csv', [[40, 49]], { 80: 1 });
    expect(scoreSeriesAt(s, 0.5, STANDARD).raw).toBeCloseTo(-1.11, 12);
    expect(scoreSeriesAt(s, 0.5, LOW_FP).raw).toBeCloseTo(-1.22, 12);
    expect(scoreSeriesAt(s, 0.5, LOW_FN).raw).toBeCloseTo(-2.11, 12);
  });

  it('rejects scores outside [0, 1] and windows that cover no rows', () => {
    const scores = new Float64Array(100).fill(0.5);
    scores[99] = 2;
    const bad = { ...series('s.csv', [[40, 49]], {}), scores };
    expect(() => scoreSeriesAt(bad, 0.5, STANDARD)).toThrow(/not in \[0, 1\]/);
    const empty = series('s.csv', [], {});
    const outside = { ...empty, windows: [[T0 - 10 * MINUTE, T0 - 5 * MINUTE] as [number, number]] };
    expect(() => scoreSeriesAt(outside, 0.5, STANDARD)).toThrow(/covers no rows/);
  });
});

describe('optimiseThreshold', () => {
  it('picks the best corpus-wide threshold on a hand-built 2-file corpus', () => {
    // A: window 40..49, TP at its first row with score 0.6, FP before it (row 20) with score 0.8.
    // B: window 60..69, TP at its first row with score 0.7, FP before it (row 30) with score 0.5.
    // Standard raw score by threshold:
    //   1.1: -1 - 1                 = -2
    //   0.8: -2 - 0.11              = -2.11
    //   0.7: -0.11 - 1 (A) + 1 (B)  = -0.11
    //   0.6: -0.11 + 1 + 1          =  1.89   <- best
    //   0.5: 1.89 - 0.11            =  1.78
    //   0  : every scored row detected, far worse
    const corpus = [
      series('a/A.csv', [[40, 49]], { 40: 0.6, 20: 0.8 }),
      series('b/B.csv', [[60, 69]], { 60: 0.7, 30: 0.5 }),
    ];
    const best = optimiseThreshold(corpus, STANDARD);
    expect(best.threshold).toBe(0.6);
    expect(best.raw).toBeCloseTo(1.89, 12);
  });

  it('reports 1.1 when detecting nothing is best', () => {
    const corpus = [series('a/A.csv', [[40, 49]], { 20: 0.9 })];
    expect(optimiseThreshold(corpus, STANDARD)).toEqual({ threshold: NAB_NEVER_DETECT_THRESHOLD, raw: -1 });
  });

  it('matches brute force over every distinct score', () => {
    // Deterministic pseudo-random scores, coarsely rounded so that many rows share a score.
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const make = (name: string, rows: number, windows: Array<[number, number]>): ScoredSeries => {
      const base = series(name, windows, {}, rows);
      const scores = new Float64Array(rows);
      for (let i = 0; i < rows; i++) {
        const inWindow = windows.some(([a, b]) => i >= a && i <= b);
        scores[i] = Math.round((inWindow ? 0.4 + 0.6 * rand() : rand() ** 3) * 50) / 50;
      }
      return { ...base, scores };
    };
    const corpus = [make('a/A.csv', 300, [[100, 129], [200, 219]]), make('b/B.csv', 200, [[50, 59]])];
    for (const profile of NAB_PROFILES) {
      const candidates = [NAB_NEVER_DETECT_THRESHOLD, ...new Set(corpus.flatMap((s) => Array.from(s.scores)))];
      const rawAt = (t: number) => corpus.reduce((sum, s) => sum + scoreSeriesAt(s, t, profile).raw, 0);
      const bruteBest = Math.max(...candidates.map(rawAt));
      const best = optimiseThreshold(corpus, profile);
      expect(best.raw).toBeCloseTo(bruteBest, 10);
      expect(rawAt(best.threshold)).toBeCloseTo(bruteBest, 10);
      // ties go to the highest threshold
      const tied = candidates.filter((t) => Math.abs(rawAt(t) - bruteBest) < 1e-10);
      expect(best.threshold).toBe(Math.max(...tied));
    }
  });

  // Speed lives in the benchmark; here the one-sort sweep must agree with per-profile optimisation.
  it('evaluates ~110,000 rows for three profiles consistently with optimiseThreshold', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const corpus = Array.from({ length: 11 }, (_, f) => {
      const s = series(`c/f${f}.csv`, [[3000, 3400], [7000, 7400]], {}, 10_000);
      return { ...s, scores: Float64Array.from({ length: 10_000 }, () => rand()) };
    });
    const results = evaluateCorpus(corpus) as unknown as Record<string, { threshold: number }>;
    expect(Object.keys(results)).toHaveLength(3);
    for (const profile of NAB_PROFILES) {
      expect(results[profile.name]!.threshold).toBe(optimiseThreshold(corpus, profile).threshold);
    }
  });
});

describe('normalisedScore', () => {
  const corpusWith = (scoresAt: (windowStart: number) => Record<number, number>) => [
    series('a/A.csv', [[40, 49]], scoresAt(40)),
    series('b/B.csv', [[30, 39], [70, 79]], { ...scoresAt(30), ...scoresAt(70) }),
    series('c/C.csv', [], {}),
  ];

  it('scores the null detector 0 and the perfect detector 100 for every profile', () => {
    const nothing = corpusWith(() => ({}));
    const perfect = corpusWith((start) => ({ [start]: 1 }));
    for (const profile of NAB_PROFILES) {
      const none = normalisedScore(nothing, profile);
      // 3 windows: null = -3 * A_FN, perfect = 3 * A_TP
      expect(none.nullRaw).toBe(-3 * profile.fn);
      expect(none.perfectRaw).toBe(3 * profile.tp);
      expect(none.threshold).toBe(NAB_NEVER_DETECT_THRESHOLD);
      expect(none.score).toBe(0);
      const best = normalisedScore(perfect, profile);
      expect(best.threshold).toBe(1);
      expect(best.raw).toBe(3);
      expect(best.score).toBe(100);
      expect(best.perFile.map((f) => f.tp)).toEqual([1, 2, 0]);
    }
  });

  it('normalises 100 * (raw - null) / (perfect - null)', () => {
    // A detected at its first row (+1), B's two windows missed (-2): raw = -1 at threshold 1.
    // standard: 100 * (-1 - -3)/(3 - -3) = 33.33; reward_low_FN_rate: 100 * (-3 - -6)/(3 - -6) = 33.33
    // (with A_FN = 2 the two misses cost -4, so raw = 1 - 4 = -3)
    const corpus = corpusWith((start): Record<number, number> => (start === 40 ? { 40: 1 } : {}));
    const results = evaluateCorpus(corpus);
    expect(results.standard.raw).toBe(-1);
    expect(results.standard.score).toBeCloseTo(100 / 3, 10);
    expect(results.reward_low_FN_rate.raw).toBe(-3);
    expect(results.reward_low_FN_rate.score).toBeCloseTo(100 / 3, 10);
    expect(results.reward_low_FP_rate.score).toBeCloseTo(100 / 3, 10);
  });

  it('refuses a corpus without windows', () => {
    expect(() => normalisedScore([series('c/C.csv', [], {})], STANDARD)).toThrow(/without anomaly windows/);
  });
});
