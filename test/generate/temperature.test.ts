import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_COUNT,
  formatNdjsonLine,
  mulberry32,
  type TemperatureRecord,
  temperatureRecords,
  TemperatureSeries,
  writeNdjson,
  type PacingClock,
} from '../../src/generate/temperature.js';

function take(options: Parameters<typeof temperatureRecords>[0]): TemperatureRecord[] {
  return Array.from(temperatureRecords(options));
}

/** Collects everything written, optionally slowly to exercise backpressure. */
function sink(options: { delayMs?: number; highWaterMark?: number } = {}): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      if (options.delayMs === undefined) callback();
      else setTimeout(callback, options.delayMs);
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * A virtual clock for pacing: time moves only when a timer fires, so pacing
 * is checked exactly whatever the machine's load. Timers fire on setImmediate,
 * after pending I/O callbacks, in order of their due time.
 */
function virtualClock(): PacingClock & { elapsed(): number; timers(): number; at(ms: number, fn: () => void): void } {
  let now = 0;
  let fired = 0;
  const events: { at: number; fn: () => void }[] = [];
  return {
    now: () => now,
    setTimer(callback, ms) {
      let cancelled = false;
      setImmediate(() => {
        if (cancelled) return;
        const due = now + ms;
        for (const e of events.filter((e) => e.at <= due)) {
          events.splice(events.indexOf(e), 1);
          now = e.at;
          e.fn();
        }
        now = due;
        fired++;
        callback();
      });
      return () => {
        cancelled = true;
      };
    },
    elapsed: () => now,
    timers: () => fired,
    at(ms, fn) {
      events.push({ at: ms, fn });
    },
  };
}

function countWrites(stream: Writable, onWrite: (chunk: string) => void): void {
  const original = stream.write.bind(stream);
  stream.write = ((...args: Parameters<Writable['write']>) => {
    onWrite(String(args[0]));
    return original(...args);
  }) as Writable['write'];
}

const lines = (chunk: string): number => chunk.split('\n').length - 1;

describe('mulberry32', () => {
  it('matches the well-known first output for seed 42', () => {
    const next = mulberry32(42);
    const first = [next(), next(), next()];
    expect(first.map((u) => Math.round(u * 4294967296))).toEqual(first.map((u) => u * 4294967296));
    expect(first.every((u) => u >= 0 && u < 1)).toBe(true);
    expect(first[0]).toBeCloseTo(0.6011037519201636, 15);
  });
});

describe('temperature series', () => {
  it('follows the two-draws-per-record recipe', () => {
    const next = mulberry32(7);
    const expected: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const u = next();
      const v = u < 0.01 ? 15 + 30 * next() : 30 + (next() * 4 - 2);
      expected.push(Math.round(v * 100) / 100);
    }
    expect(take({ count: 5000, seed: 7 }).map((record) => record.value)).toEqual(expected);
  });

  it('is deterministic by seed', () => {
    expect(take({ count: 1000, seed: 123 })).toEqual(take({ count: 1000, seed: 123 }));
    expect(take({ count: 1000, seed: 123 })).not.toEqual(take({ count: 1000, seed: 124 }));
    expect(take({ count: 50 })).toEqual(take({ count: 50, seed: 42 }));
  });

  it('numbers records from 0 and stops at count', () => {
    const records = take({ count: 4 });
    expect(records.map((record) => record.time)).toEqual([0, 1, 2, 3]);
    expect(records[0]).toEqual({ time: 0, value: expect.any(Number) });
    expect(take({ count: 0 })).toEqual([]);
    expect(take({}).length).toBe(DEFAULT_COUNT);
  });

  it('runs endlessly with count Infinity', () => {
    const series = new TemperatureSeries({ count: Infinity });
    let advanced = 0;
    while (advanced < 100_000 && series.advance()) advanced++;
    expect(advanced).toBe(100_000);
    expect(series.time).toBe(99_999);
  });

  it('injects outliers at the requested rate, in range, labelled, with 2 decimals', () => {
    const n = 100_000;
    const p = 0.01;
    const records = take({ count: n, seed: 2024, outlierRate: p, labels: true });
    let outliers = 0;
    const wrong: TemperatureRecord[] = [];
    for (const record of records) {
      const { value, label } = record;
      const twoDecimals = /^\d+(\.\d{1,2})?$/.test(String(value)) && Math.round(value * 100) / 100 === value;
      const inRange = label === 1 ? value >= 15 && value <= 45 : label === 0 && value >= 28 && value <= 32;
      if (!twoDecimals || !inRange) wrong.push(record);
      if (label === 1) outliers++;
    }
    expect(wrong).toEqual([]);
    const sigma = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(outliers - n * p)).toBeLessThan(5 * sigma);
    // Outliers really spread over 15..45, not just the normal band.
    const far = records.filter((record) => record.label === 1 && Math.abs(record.value - 30) > 5).length;
    expect(far).toBeGreaterThan(outliers / 2);
  });

  it('labels agree with the unlabelled series', () => {
    const plain = take({ count: 2000, seed: 5, outlierRate: 0.2 });
    const labelled = take({ count: 2000, seed: 5, outlierRate: 0.2, labels: true });
    expect(labelled.map(({ time, value }) => ({ time, value }))).toEqual(plain);
  });

  it('honours the outlier rate extremes', () => {
    expect(take({ count: 1000, outlierRate: 0, labels: true }).every((r) => r.label === 0)).toBe(true);
    expect(take({ count: 1000, outlierRate: 1, labels: true }).every((r) => r.label === 1)).toBe(true);
  });

  it.each([
    [{ count: -1 }, /^count: /],
    [{ count: 1.5 }, /^count: /],
    [{ count: Number.NaN }, /^count: /],
    [{ seed: 0.5 }, /^seed: /],
    [{ outlierRate: 1.1 }, /^outlierRate: /],
    [{ outlierRate: Number.NaN }, /^outlierRate: /],
  ])('rejects %j', (options, message) => {
    expect(() => new TemperatureSeries(options)).toThrow(RangeError);
    expect(() => new TemperatureSeries(options)).toThrow(message);
  });
});

describe('formatNdjsonLine', () => {
  it('writes compact JSON lines', () => {
    expect(formatNdjsonLine({ time: 0, value: 30.12 })).toBe('{"time":0,"value":30.12}\n');
    expect(formatNdjsonLine({ time: 7, value: 41, label: 1 })).toBe('{"time":7,"value":41,"label":1}\n');
  });

  it('round-trips through JSON.parse', () => {
    for (const record of take({ count: 1000, labels: true, outlierRate: 0.1 })) {
      expect(JSON.parse(formatNdjsonLine(record))).toEqual(record);
    }
  });
});

describe('writeNdjson', () => {
  it('writes the same lines as formatNdjsonLine', async () => {
    const { stream, text } = sink();
    const options = { count: 3000, seed: 9, labels: true };
    const summary = await writeNdjson(stream, options);
    const records = take(options);
    expect(text()).toBe(records.map(formatNdjsonLine).join(''));
    expect(summary).toEqual({
      records: 3000,
      outliers: records.filter((record) => record.label === 1).length,
      stoppedBy: 'end',
    });
    expect(stream.writableEnded).toBe(false);
  });

  it('waits for drain on a slow stream and loses nothing', async () => {
    const { stream, text } = sink({ delayMs: 1, highWaterMark: 64 });
    let maxBuffered = 0;
    const original = stream.write.bind(stream);
    stream.write = ((...args: Parameters<Writable['write']>) => {
      const result = original(...args);
      maxBuffered = Math.max(maxBuffered, stream.writableLength);
      return result;
    }) as Writable['write'];
    await writeNdjson(stream, { count: 5000 });
    expect(text()).toBe(take({ count: 5000 }).map(formatNdjsonLine).join(''));
    // One batch at most is queued beyond the high-water mark.
    expect(maxBuffered).toBeLessThan(64 + 512 * 40);
  });

  it('paces to the requested rate: never ahead of it, never behind it (virtual clock)', async () => {
    const { stream, text } = sink();
    const clock = virtualClock();
    const written: { at: number; records: number }[] = [];
    countWrites(stream, (chunk) => written.push({ at: clock.elapsed(), records: lines(chunk) }));
    const summary = await writeNdjson(stream, { count: 200 }, { rate: 1000, clock });
    expect(summary.records).toBe(200);
    expect(text().split('\n').length).toBe(201);
    // The first record goes out at once; by virtual time t at most 1 + t·rate records were written.
    let total = 0;
    for (const w of written) {
      total += w.records;
      expect(total).toBeLessThanOrEqual(1 + w.at); // 1000/s = 1 per ms
    }
    // 199 further records at 1000/s take 199 ms; timers round up to whole ms, so allow one tick.
    expect(clock.elapsed()).toBeGreaterThanOrEqual(199);
    expect(clock.elapsed()).toBeLessThanOrEqual(200);
  });

  it('emits paced records in batches, not one timer per record (virtual clock)', async () => {
    const { stream } = sink();
    const clock = virtualClock();
    let writes = 0;
    let records = 0;
    countWrites(stream, (chunk) => {
      writes++;
      records += lines(chunk);
    });
    await writeNdjson(stream, { count: 20_000 }, { rate: 100_000, clock });
    expect(records).toBe(20_000);
    // 20,000 records at 100,000/s: 200 ms of virtual time, ...
    expect(clock.elapsed()).toBeGreaterThanOrEqual(199);
    expect(clock.elapsed()).toBeLessThanOrEqual(201);
    // ... one write per 1 ms timer tick (100 records each), never one per record.
    expect(writes).toBeGreaterThanOrEqual(20_000 / 512);
    expect(writes).toBeLessThanOrEqual(202);
    expect(clock.timers()).toBeLessThanOrEqual(201);
  });

  it('paces with the real clock too (default)', async () => {
    const { stream, text } = sink();
    const summary = await writeNdjson(stream, { count: 20 }, { rate: 1000 });
    expect(summary).toEqual({ records: 20, outliers: expect.any(Number), stoppedBy: 'end' });
    expect(text().split('\n').length).toBe(21);
  });

  it('stops quietly when the reader goes away (EPIPE)', async () => {
    let accepted = 0;
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        accepted++;
        if (accepted < 3) callback();
        else callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const summary = await writeNdjson(stream, { count: Infinity });
    expect(summary.stoppedBy).toBe('closed');
    expect(summary.records).toBeGreaterThan(0);
    // The error is swallowed even if the stream emits it again later.
    await new Promise((resolve) => setTimeout(resolve, 10));
  });

  it('stops quietly when the stream is destroyed while paced', async () => {
    const stream = new PassThrough();
    stream.resume();
    const clock = virtualClock();
    clock.at(30, () => stream.destroy());
    const summary = await writeNdjson(stream, { count: Infinity }, { rate: 1000, clock });
    expect(summary.stoppedBy).toBe('closed');
    // Destroyed at virtual 30 ms of 1000/s: the records due by then (1 + 30) and no more.
    expect(summary.records).toBeGreaterThanOrEqual(30);
    expect(summary.records).toBeLessThanOrEqual(31);
  });

  it('stops when the signal aborts', async () => {
    const { stream } = sink();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const summary = await writeNdjson(stream, { count: Infinity }, { rate: 500, signal: controller.signal });
    expect(summary.stoppedBy).toBe('aborted');
    // Our listeners are gone once it returns.
    expect(stream.listenerCount('error') + stream.listenerCount('drain') + stream.listenerCount('close')).toBe(0);
  });

  it('rejects on other stream errors', async () => {
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
      },
    });
    stream.on('error', () => undefined);
    await expect(writeNdjson(stream, { count: 10 })).rejects.toThrow('disk full');
  });

  it('rejects a bad rate', async () => {
    await expect(writeNdjson(sink().stream, {}, { rate: 0 })).rejects.toThrow(/^rate: /);
  });
});
