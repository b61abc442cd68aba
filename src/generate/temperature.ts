/**
 * The reference scenario's input: a temperature sensor reading 30 ± 2 with
 * occasional injected outliers anywhere in 15..45, as NDJSON
 * `{"time":t,"value":v}` with t = 0, 1, 2, ...
 *
 * Seeded with Mulberry32 and drawing exactly two numbers per record (the
 * outlier coin, then the value), so a seed always gives the same series and
 * the series matches other implementations of the same recipe.
 */
import type { Writable } from 'node:stream';

export interface TemperatureOptions {
  /**
   * Records to produce; Infinity for an endless stream. Default 10,000: enough
   * to get well past a forest's warm-up and still finish instantly.
   */
  count?: number;
  /** PRNG seed, any integer (its low 32 bits are used). Default 42. */
  seed?: number;
  /** Probability that a record is an injected outlier. Default 0.01. */
  outlierRate?: number;
  /** Add `"label"`: 1 for injected outliers (even those landing inside 28..32), else 0. Default false. */
  labels?: boolean;
}

export interface TemperatureRecord {
  time: number;
  value: number;
  label?: 0 | 1;
}

export const DEFAULT_COUNT = 10_000;
export const DEFAULT_SEED = 42;
export const DEFAULT_OUTLIER_RATE = 0.01;

/** Mulberry32: a small, fast 32-bit PRNG returning uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The series as a cursor: `advance()` moves to the next record and exposes it
 * in `time`, `value` and `outlier` without allocating, for hot loops such as
 * benchmarks and the NDJSON writer.
 */
export class TemperatureSeries {
  readonly count: number;
  readonly seed: number;
  readonly outlierRate: number;
  /** Time of the current record; -1 before the first `advance()`. */
  time = -1;
  value = Number.NaN;
  /** The current record is an injected outlier. */
  outlier = false;
  #state: number;

  constructor(options: TemperatureOptions = {}) {
    const count = options.count ?? DEFAULT_COUNT;
    if (!(count === Infinity || (Number.isSafeInteger(count) && count >= 0))) {
      throw new RangeError(`count: must be a non-negative integer or Infinity, got ${String(count)}`);
    }
    const seed = options.seed ?? DEFAULT_SEED;
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`seed: must be an integer, got ${String(seed)}`);
    }
    const outlierRate = options.outlierRate ?? DEFAULT_OUTLIER_RATE;
    if (!(outlierRate >= 0 && outlierRate <= 1)) {
      throw new RangeError(`outlierRate: must be between 0 and 1, got ${String(outlierRate)}`);
    }
    this.count = count;
    this.seed = seed;
    this.outlierRate = outlierRate;
    this.#state = seed | 0;
  }

  /** Moves to the next record; false once `count` records have been produced. */
  advance(): boolean {
    if (this.time + 1 >= this.count) return false;
    this.time++;
    const u = this.#next();
    let v: number;
    if (u < this.outlierRate) {
      v = 15 + 30 * this.#next();
      this.outlier = true;
    } else {
      v = 30 + (this.#next() * 4 - 2);
      this.outlier = false;
    }
    this.value = Math.round(v * 100) / 100;
    return true;
  }

  // Mulberry32 inlined on a field: a closure call per draw is measurably slower here.
  #next(): number {
    const a = (this.#state + 0x6d2b79f5) | 0;
    this.#state = a;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** The series as record objects. */
export function* temperatureRecords(options: TemperatureOptions = {}): Generator<TemperatureRecord, void, undefined> {
  const series = new TemperatureSeries(options);
  const labels = options.labels ?? false;
  while (series.advance()) {
    yield labels
      ? { time: series.time, value: series.value, label: series.outlier ? 1 : 0 }
      : { time: series.time, value: series.value };
  }
}

/** One NDJSON line, newline included: `{"time":0,"value":30.12}\n` (plus `"label"` when present). */
export function formatNdjsonLine(record: TemperatureRecord): string {
  return ndjsonLine(record.time, record.value, record.label);
}

function ndjsonLine(time: number, value: number, label: number | undefined): string {
  return label === undefined
    ? `{"time":${time},"value":${value}}\n`
    : `{"time":${time},"value":${value},"label":${label}}\n`;
}

export interface PacingOptions {
  /** Records per second; undefined or Infinity writes as fast as the stream accepts. */
  rate?: number;
  /** Stops writing (without error) when aborted, e.g. on Ctrl-C with an endless count. */
  signal?: AbortSignal;
  /** Time source for pacing; default the real one. Tests pass a virtual clock so pacing is checked without wall time. */
  clock?: PacingClock;
}

/** Milliseconds now, and a one-shot timer returning its cancel function. */
export interface PacingClock {
  now(): number;
  setTimer(callback: () => void, ms: number): () => void;
}

const realClock: PacingClock = {
  now: () => performance.now(),
  setTimer: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
};

export interface WriteSummary {
  /** Records handed to the stream (some may be lost if the reader went away). */
  records: number;
  /** How many of them were injected outliers. */
  outliers: number;
  /** 'end': count reached; 'closed': the reader went away (EPIPE, stream destroyed); 'aborted': the signal fired. */
  stoppedBy: 'end' | 'closed' | 'aborted';
}

/** Records joined into one write: large enough to amortise write calls, small enough to keep latency low. */
const MAX_BATCH = 512;
/** The pacing bucket holds at most this much time's worth of records, bounding bursts after a stall. */
const BURST_SECONDS = 0.1;

/** Errors meaning the reader is gone, which ends the output quietly (e.g. `generate | head`). */
const CLOSED_CODES = new Set([
  'EPIPE',
  'ECONNRESET',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function isClosedError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CLOSED_CODES.has(code);
}

/**
 * Writes the series to `stream` as NDJSON, honouring backpressure and an
 * optional rate. Resolves once everything written has been flushed, or when
 * the reader went away or the signal fired; rejects on other stream errors.
 * The stream is not ended.
 *
 * Pacing is a token bucket refilled from the clock: each timer tick writes
 * every record that has come due as one batch, so high rates cost a few
 * timers per millisecond at most, never one per record.
 */
export async function writeNdjson(
  stream: Writable,
  options: TemperatureOptions = {},
  pacing: PacingOptions = {},
): Promise<WriteSummary> {
  const series = new TemperatureSeries(options);
  const labels = options.labels ?? false;
  const rate = pacing.rate ?? Infinity;
  if (!(rate > 0)) throw new RangeError(`rate: must be a positive number of records per second, got ${String(rate)}`);
  const paced = rate !== Infinity;
  const signal = pacing.signal;
  const clock = pacing.clock ?? realClock;

  let failure: unknown;
  let closed = false;
  let inFlight = 0;
  // Resolves the current wait early (drain, flush, stream gone, abort).
  let wake: (() => void) | undefined;
  const wakeUp = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const onError = (error: unknown): void => {
    if (isClosedError(error)) closed = true;
    else failure ??= error;
    wakeUp();
  };
  const onClose = (): void => {
    closed = true;
    wakeUp();
  };
  const onWritten = (error?: Error | null): void => {
    inFlight--;
    if (error) onError(error);
    if (inFlight === 0) wakeUp();
  };
  stream.on('error', onError);
  stream.on('close', onClose);
  stream.on('drain', wakeUp);
  signal?.addEventListener('abort', wakeUp);

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const cancel = clock.setTimer(wakeUp, ms);
      wake = () => {
        cancel();
        resolve();
      };
    });
  const untilWoken = (): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
    });

  const capacity = paced ? Math.max(1, rate * BURST_SECONDS) : Infinity;
  let tokens = 1; // the first record goes out at once
  let refilledAt = clock.now();
  let records = 0;
  let outliers = 0;
  let stoppedBy: WriteSummary['stoppedBy'] = 'end';

  const stopReason = (): WriteSummary['stoppedBy'] | undefined => {
    if (failure !== undefined) throw failure;
    if (signal?.aborted) return 'aborted';
    if (closed || stream.destroyed || stream.writableEnded) return 'closed';
    return undefined;
  };

  try {
    for (;;) {
      const stop = stopReason();
      if (stop !== undefined) {
        stoppedBy = stop;
        break;
      }
      if (stream.writableNeedDrain) {
        await untilWoken();
        continue;
      }

      let batch = MAX_BATCH;
      if (paced) {
        const now = clock.now();
        tokens = Math.min(capacity, tokens + ((now - refilledAt) * rate) / 1000);
        refilledAt = now;
        if (tokens < 1) {
          await sleep(Math.max(1, Math.ceil(((1 - tokens) * 1000) / rate)));
          continue;
        }
        batch = Math.min(MAX_BATCH, Math.floor(tokens));
      }

      let text = '';
      let n = 0;
      while (n < batch && series.advance()) {
        text += ndjsonLine(series.time, series.value, labels ? (series.outlier ? 1 : 0) : undefined);
        if (series.outlier) outliers++;
        n++;
      }
      if (n === 0) break;
      records += n;
      if (paced) tokens -= n;
      inFlight++;
      stream.write(text, onWritten);
    }

    // Resolve only once the data is flushed, so a late EPIPE is still seen as 'closed'.
    while (stoppedBy === 'end' && inFlight > 0) {
      await untilWoken();
      const stop = stopReason();
      if (stop !== undefined) stoppedBy = stop;
    }
  } finally {
    stream.off('close', onClose);
    stream.off('drain', wakeUp);
    signal?.removeEventListener('abort', wakeUp);
    // A broken stream may still emit its error after this returns; it is dead anyway, so keep it quiet.
    if (!closed) stream.off('error', onError);
  }
  return { records, outliers, stoppedBy };
}
