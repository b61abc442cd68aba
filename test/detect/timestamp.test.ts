import { describe, expect, it } from 'vitest';
import { parseTimestamp } from '../../src/detect/timestamp.js';

describe('parseTimestamp', () => {
  it('reads NAB and ISO-8601 date-times, without a zone as UTC', () => {
    expect(parseTimestamp('2014-02-19 10:50:00')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    expect(parseTimestamp('2014-02-19T10:50:00')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    expect(parseTimestamp('2014-02-19T10:50:00Z')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    expect(parseTimestamp('2014-02-19T10:50:00.250Z')).toBe(Date.UTC(2014, 1, 19, 10, 50, 0, 250));
    expect(parseTimestamp('2014-02-19 10:50:00.000000')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    expect(parseTimestamp('2014-02-19T10:50')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    // 10:50 at +01:00 is 09:50 UTC; at -05:30 it is 16:20 UTC.
    expect(parseTimestamp('2014-02-19T10:50:00+01:00')).toBe(Date.UTC(2014, 1, 19, 9, 50));
    expect(parseTimestamp('2014-02-19T10:50:00-0530')).toBe(Date.UTC(2014, 1, 19, 16, 20));
  });

  it('reads epoch seconds and milliseconds when they are plausibly clocks', () => {
    // 1,400,000,000 s is 2014-05-13T16:53:20Z.
    expect(parseTimestamp(1_400_000_000)).toBe(Date.UTC(2014, 4, 13, 16, 53, 20));
    expect(parseTimestamp('1400000000')).toBe(Date.UTC(2014, 4, 13, 16, 53, 20));
    expect(parseTimestamp(1_400_000_000_123)).toBe(1_400_000_000_123);
    expect(parseTimestamp(1_400_000_000.5)).toBe(1_400_000_000_500);
  });

  it('treats small numbers (record counters like the reference stream’s time: 0, 1, 2) as no timestamp', () => {
    for (const v of [0, 1, 2, 86_400, 999_999_999, -5, 1e15, Number.NaN, Infinity]) expect(parseTimestamp(v)).toBeNaN();
    expect(parseTimestamp('0')).toBeNaN();
  });

  it('rejects what is not a date-time', () => {
    for (const v of ['', 'yesterday', '2014-02-30 10:00:00', '2014-13-01T00:00:00', '2014-02-19', '2014-02-19T25:00:00', '2014-02-19T10:50:00+25:00'])
      expect(parseTimestamp(v), v).toBeNaN();
    for (const v of [undefined, null, true, {}, []]) expect(parseTimestamp(v)).toBeNaN();
  });
});
