/**
 * Record timestamps for detection: what a record's time field means as an instant.
 *
 * `parseTimestamp(value)` returns ms since the epoch, or NaN when the value is not a
 * timestamp. Accepted:
 * - strings: ISO-8601 dates with a time (`2014-02-19T10:50:00Z`, `+01:00` offsets, fractions)
 *   and NAB's `2014-02-19 10:50:00` (either separator); a time without a zone is UTC, so a
 *   local wall clock keeps its time of day;
 * - numbers (or numeric strings) that are plausibly epoch time: from 1e9 up to 1e11 are
 *   seconds (2001-09-09 .. 5138), from 1e11 up to 1e14 milliseconds (1973 .. 5138).
 * Small numbers are counters, not clocks: the reference stream's `time: 0, 1, 2` is a record
 * index, and treating it as 1970 plus a few seconds would make every record the same time
 * of day. So are dates before 2001 given as seconds; give those as ISO strings.
 */

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Epoch seconds from here (2001-09-09T01:46:40Z) up to EPOCH_MS_FROM. */
export const EPOCH_SECONDS_FROM = 1e9;
/** Epoch milliseconds from here (1973-03-03) up to EPOCH_MAX. */
export const EPOCH_MS_FROM = 1e11;
const EPOCH_MAX = 1e14;

function fromNumber(n: number): number {
  if (!Number.isFinite(n) || n < EPOCH_SECONDS_FROM || n >= EPOCH_MAX) return Number.NaN;
  return n < EPOCH_MS_FROM ? n * 1000 : n;
}

function fromString(text: string): number {
  const t = text.trim();
  if (NUMBER.test(t)) return fromNumber(Number(t));
  const m = DATE_TIME.exec(t);
  if (!m) return Number.NaN;
  const [year, month, day, hour, minute] = m.slice(1, 6).map(Number) as [number, number, number, number, number];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  let at = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC rolls 02-30 over into March: reject it rather than guess.
  if (new Date(at).getUTCDate() !== day) return Number.NaN;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4));
    if (offset > 18 * 60) return Number.NaN;
    at -= sign * offset * 60_000;
  }
  return at;
}

/** A record's time field as ms since the epoch; NaN when it is absent or not a timestamp. */
export function parseTimestamp(value: unknown): number {
  if (typeof value === 'number') return fromNumber(value);
  if (typeof value === 'string') return fromString(value);
  return Number.NaN;
}
