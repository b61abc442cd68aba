/**
 * The quality grader with timestamped records: suppression in time, the time-of-day
 * context, and exact state round trips with both.
 */
import { describe, expect, it } from 'vitest';
import { createForestSync } from '../../src/index.js';
import { QUALITY_FOREST_DEFAULTS, QualityGrader, type QualityGraderOptions } from '../../src/detect/quality-grader.js';
import { uniform } from '../support/xorshift.js';

const START = Date.UTC(2020, 0, 6);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function forestScores(values: number[], seed = 3): Float64Array {
  const forest = createForestSync({ dimensions: 1, ...QUALITY_FOREST_DEFAULTS, randomSeed: seed });
  const scores = forest.process(Float64Array.from(values));
  forest.dispose();
  return scores;
}

function alarmsOf(scores: ArrayLike<number>, times: ArrayLike<number> | undefined, grader: QualityGrader, values?: ArrayLike<number>): number[] {
  const found: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (grader.grade(s, [values?.[i] ?? 0], s > 0, times?.[i]).anomaly) found.push(i);
  }
  return found;
}

/** 5-minute records of noise around 10, with a burst of +8 for 15 minutes at 03:00 every day. */
function dailySpikes(days: number): { values: number[]; times: number[] } {
  const u = uniform(7);
  const values: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < days * 288; i++) {
    const slot = i % 288;
    values.push(10 + u() + (slot >= 36 && slot < 39 ? 8 : 0));
    times.push(START + i * 5 * MINUTE);
  }
  return { values, times };
}

describe('QualityGrader with timestamps', () => {
  it('stops alarming on a spike that comes every day at the same time', () => {
    const { values, times } = dailySpikes(20);
    const scores = forestScores(values);
    const days = (found: number[]): number[] => [...new Set(found.map((i) => Math.floor(i / 288)))];
    // Without the time of day every day's spike is news.
    const untimed = days(alarmsOf(scores, undefined, new QualityGrader()));
    expect(untimed.length).toBeGreaterThanOrEqual(15);
    const noContext = days(alarmsOf(scores, times, new QualityGrader({ seasonalFactor: 0 })));
    expect(noContext.length).toBeGreaterThanOrEqual(15);
    // With it, only the first few days alarm (the slot needs 3 days of history).
    const timed = days(alarmsOf(scores, times, new QualityGrader()));
    expect(timed.length).toBeGreaterThanOrEqual(1);
    expect(Math.max(...timed)).toBeLessThanOrEqual(5);
  });

  it('still alarms on a spike at a new time of day in such a stream', () => {
    const { values, times } = dailySpikes(20);
    const at = 15 * 288 + 150; // day 15, 12:30
    values[at] = 30;
    const found = alarmsOf(forestScores(values), times, new QualityGrader());
    expect(found).toContain(at);
  });

  it('suppresses repeats for suppressionTime after an alarm, however many records that is', () => {
    // Scores of 1 with an incident (score 9) every 600 records.
    const scores = Array.from({ length: 6000 }, (_, i) => (i >= 1200 && i % 600 === 0 ? 9 : 1 + 0.01 * ((i * 7919) % 13)));
    const incidents = scores.flatMap((s, i) => (s === 9 ? [i] : []));
    // One record a minute: 600 records are 10 hours, inside 24 hours of suppression.
    const minutely = scores.map((_, i) => START + i * MINUTE);
    const everyOther = alarmsOf(scores, minutely, new QualityGrader());
    expect(everyOther).toEqual(incidents.filter((_, k) => k % 3 === 0));
    // One record an hour: 600 records are 25 days; each incident alarms.
    const hourly = scores.map((_, i) => START + i * HOUR);
    expect(alarmsOf(scores, hourly, new QualityGrader())).toEqual(incidents);
    // No timestamps: the record count alone (100) applies.
    expect(alarmsOf(scores, undefined, new QualityGrader())).toEqual(incidents);
    // Time going backwards (a clock change) keeps the suppression on.
    const g = new QualityGrader({ suppression: 0 });
    alarmsOf(scores.slice(0, 1300), hourly, g);
    expect(g.grade(9, [0], true, hourly[1200]! - HOUR).anomaly).toBe(false);
  });

  it('finds an ordinary value at the wrong time of day: the daily rise that does not come', () => {
    // Low (10) at night, high (20) from 08:00 to 18:00, 5-minute records; on day 14 the
    // rise does not happen. Every value that day is one the stream has seen many times.
    const u = uniform(11);
    const values: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < 20 * 288; i++) {
      const slot = i % 288;
      const day = Math.floor(i / 288);
      const high = slot >= 96 && slot < 216 && day !== 14;
      values.push((high ? 20 : 10) + 0.5 * u());
      times.push(START + i * 5 * MINUTE);
    }
    const scores = forestScores(values);
    const inDay14 = (i: number): boolean => i >= 14 * 288 + 96 && i < 14 * 288 + 216;
    const found = alarmsOf(scores, times, new QualityGrader(), values);
    expect(found.filter(inDay14).length).toBe(1);
    // The forest alone (value context off) sees nothing unusual that day.
    const forestOnly = alarmsOf(scores, times, new QualityGrader({ contextMargin: 1000 }), values);
    expect(forestOnly.filter(inDay14)).toEqual([]);
    // And the normal days do not alarm once the context has three days of history.
    expect(found.filter((i) => i >= 4 * 288 && !inDay14(i))).toEqual([]);
  });

  it('treats NaN time as no timestamp', () => {
    const { values, times } = dailySpikes(10);
    const scores = forestScores(values);
    expect(alarmsOf(scores, times.map(() => Number.NaN), new QualityGrader())).toEqual(alarmsOf(scores, undefined, new QualityGrader()));
  });

  it('continues exactly after saveState/restoreState, mid-day and mid-suppression', () => {
    const { values, times } = dailySpikes(12);
    values[8 * 288 + 100] = 40;
    const scores = forestScores(values);
    const options: QualityGraderOptions = { seasonalSlots: 48 };
    const reference = new QualityGrader(options);
    const expected = Array.from(scores, (s, i) => ({ ...reference.grade(s, [values[i]!], s > 0, times[i]) }));
    for (const cut of [50, 4 * 288 + 37, 8 * 288 + 101]) {
      const g = new QualityGrader(options);
      for (let i = 0; i < cut; i++) g.grade(scores[i]!, [values[i]!], scores[i]! > 0, times[i]);
      const state = g.saveState();
      const restored = QualityGrader.restoreState(state);
      expect(restored.saveState()).toEqual(state);
      for (let i = cut; i < scores.length; i++) {
        expect(restored.grade(scores[i]!, [values[i]!], scores[i]! > 0, times[i]), `record ${i} after cut ${cut}`).toEqual(expected[i]);
      }
    }
  });

  it('reads a version-2 state (before timestamps) as a grader without them', () => {
    // [version 2, shortWindow, latestWeight, longHorizon, warmup, alarmLevel, suppression,
    //  minRelativeDeviation, minDeviation, scored, sinceAlarm, mean, variance, ringNext, evidence, ring x 5]
    const v2 = [2, 5, 0.1, 4000, 100, 6, 200, 0.25, 0.01, 500, 30, 1.2, 0.04, 2, 0.3, 1, 1.1, 1.2, 1.3, 1.4];
    const g = QualityGrader.restoreState(v2);
    expect(g.options).toMatchObject({ suppression: 200, suppressionTime: 0, seasonalFactor: 0, contextMargin: 1000 });
    expect(g.scored).toBe(500);
    expect(g.sinceAlarm).toBe(30);
    expect(Array.from(g.ring)).toEqual([1, 1.1, 1.2, 1.3, 1.4]);
    expect(() => QualityGrader.restoreState([...v2, 0])).toThrow(/expected 20/);
  });

  it('rejects bad time options', () => {
    expect(() => new QualityGrader({ suppressionTime: -1 })).toThrow(RangeError);
    expect(() => new QualityGrader({ seasonalSlots: 0 })).toThrow(RangeError);
    expect(() => new QualityGrader({ seasonalFactor: -0.5 })).toThrow(RangeError);
    expect(() => new QualityGrader({ seasonalDays: 0 })).toThrow(RangeError);
    expect(() => new QualityGrader({ contextMargin: -1 })).toThrow(RangeError);
  });
});
