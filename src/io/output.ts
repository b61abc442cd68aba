/**
 * Sinks of the command line: stdout or a file, written in batches with backpressure, and
 * ended quietly when the reader goes away (`rcf-stream detect data.ndjson | head`).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { notificationField } from '../aws/notification-text.js';
import { drained } from '../util/streams.js';

/** Errors meaning nobody reads the output any more. */
const CLOSED_CODES = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

export function isClosedError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CLOSED_CODES.has(code);
}

export class OutputSink {
  /** The reader went away; further writes are dropped. */
  closed = false;
  /** A real write error (disk full, ...): reported at the end. */
  error: Error | undefined;
  readonly #stream: Writable;
  readonly #ownsStream: boolean;

  constructor(stream: Writable, ownsStream: boolean) {
    this.#stream = stream;
    this.#ownsStream = ownsStream;
    stream.on('error', (error: Error) => {
      if (isClosedError(error)) this.closed = true;
      else this.error ??= error;
    });
  }

  /** A file (created or truncated), or stdout when path is undefined or '-'. */
  static async open(path: string | undefined, stdout: Writable): Promise<OutputSink> {
    if (path === undefined || path === '-') return new OutputSink(stdout, false);
    // A batch of output is ~100 KiB: a larger buffer than the 16 KiB default keeps the
    // pipeline from waiting on the disk after every batch.
    const stream = createWriteStream(path, { highWaterMark: 1024 * 1024 });
    await Promise.race([once(stream, 'open'), once(stream, 'error').then(([error]) => Promise.reject(error as Error))]);
    return new OutputSink(stream, true);
  }

  get stopped(): boolean {
    return this.closed || this.error !== undefined || this.#stream.destroyed;
  }

  get needsDrain(): boolean {
    return this.#stream.writableNeedDrain && !this.stopped;
  }

  /** Text, or bytes (UTF-8) such as a ByteTextBuilder's; the sink must not be handed them again. */
  write(text: string | Uint8Array): void {
    if (this.stopped || text.length === 0) return;
    this.#stream.write(text);
  }

  /** Resolves when the stream takes more, or is gone. */
  async drain(): Promise<void> {
    const stream = this.#stream;
    if (!this.needsDrain) return;
    await drained(stream);
  }

  /** Flushes everything; ends the stream when it is a file we opened. */
  async finish(): Promise<void> {
    const stream = this.#stream;
    if (this.stopped) {
      if (this.#ownsStream) stream.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => resolve();
      stream.once('error', done);
      if (this.#ownsStream) {
        stream.once('close', done);
        stream.end();
      } else {
        // Runs after everything queued before it has been handed to the OS.
        stream.write('', done);
      }
    });
  }
}

/** Strings at most this long are copied by a loop rather than a call into Buffer.write. */
const SHORT_STRING = 48;

/**
 * Text assembled as UTF-8 bytes. Many small pieces appended to a string make a deep rope
 * that costs more to flatten (when the stream encodes it) than building it; copying the
 * pieces into a buffer straight away gives the same bytes `Buffer.from(text)` would.
 */
export class ByteTextBuilder {
  readonly #capacity: number;
  #buffer: Buffer;
  #length = 0;

  constructor(capacity = 64 * 1024) {
    this.#capacity = Math.max(capacity, 256);
    this.#buffer = Buffer.allocUnsafe(this.#capacity);
  }

  /** Bytes appended since the last take(). */
  get length(): number {
    return this.#length;
  }

  /** Appends `text` encoded as UTF-8 (lone surrogates become U+FFFD, as Buffer.from does). */
  append(text: string): void {
    const n = text.length;
    // A UTF-16 unit never takes more than 3 bytes of UTF-8.
    if (this.#length + 3 * n > this.#buffer.length) this.#grow(3 * n);
    const buffer = this.#buffer;
    const start = this.#length;
    if (n <= SHORT_STRING) {
      let at = start;
      for (let i = 0; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) {
          this.#length = start + buffer.write(text, start, 'utf8');
          return;
        }
        buffer[at++] = c;
      }
      this.#length = at;
    } else {
      this.#length = start + buffer.write(text, start, 'utf8');
    }
  }

  /**
   * Appends `text` up to (not including) the character at `end`. Cheaper than appending
   * `text.slice(0, end)` when only the last character is dropped and it is ASCII.
   */
  appendUntil(text: string, end: number): void {
    if (end === text.length - 1 && text.charCodeAt(end) < 0x80) {
      this.append(text);
      this.#length--;
    } else {
      this.append(text.slice(0, end));
    }
  }

  /** The bytes appended so far, which the builder lets go of; it starts over empty. */
  take(): Buffer {
    const taken = this.#buffer.subarray(0, this.#length);
    // The next batch is likely about the size of this one (one long line need not make it huge).
    this.#buffer = Buffer.allocUnsafe(Math.max(this.#capacity, this.#length + (this.#length >> 2)));
    this.#length = 0;
    return taken;
  }

  #grow(extra: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.#buffer.length, this.#length + extra));
    this.#buffer.copy(bigger, 0, 0, this.#length);
    this.#buffer = bigger;
  }
}

/**
 * Java's `String.format("%.<decimals>f", x)`: HALF_UP rounding of the shortest decimal
 * representation (not of the exact binary value, which is what `toFixed` rounds), so
 * 1.0000005 gives "1.000001" like Java. Negative zero keeps its sign, as in Java.
 */
export function formatJavaFixed(x: number, decimals = 6): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  const negative = x < 0 || Object.is(x, -0);
  const [mantissa, exponentText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const pointAt = Number(exponentText) + 1;
  let integer: string;
  let fraction: string;
  if (pointAt <= 0) {
    integer = '0';
    fraction = '0'.repeat(-pointAt) + digits;
  } else if (pointAt >= digits.length) {
    integer = digits + '0'.repeat(pointAt - digits.length);
    fraction = '';
  } else {
    integer = digits.slice(0, pointAt);
    fraction = digits.slice(pointAt);
  }
  let kept = integer + fraction.slice(0, decimals).padEnd(decimals, '0');
  if (fraction.length > decimals && fraction.charCodeAt(decimals) >= 53 /* '5' */) kept = incrementDigits(kept);
  const integerLength = kept.length - decimals;
  const text = decimals > 0 ? `${kept.slice(0, integerLength)}.${kept.slice(integerLength)}` : kept;
  return (negative ? '-' : '') + text;
}

/** Adds one to a string of decimal digits. */
function incrementDigits(digits: string): string {
  const d = digits.split('');
  let i = d.length - 1;
  while (i >= 0 && d[i] === '9') d[i--] = '0';
  if (i < 0) return `1${d.join('')}`;
  d[i] = String.fromCharCode(d[i]!.charCodeAt(0) + 1);
  return d.join('');
}

/**
 * The reference sample's notification: `Anomaly detected: Time=<time>, Value=<%f>, Score=<%f>`.
 * Several values print as a bracketed list. The time comes from the record, so it is
 * made one safe, capped line first (notificationField): no forged alert lines.
 */
export function formatNotification(time: unknown, values: ArrayLike<number>, offset: number, count: number, score: number): string {
  let value: string;
  if (count === 1) value = formatJavaFixed(values[offset]!);
  else {
    const parts: string[] = [];
    for (let i = 0; i < count; i++) parts.push(formatJavaFixed(values[offset + i]!));
    value = `[${parts.join(', ')}]`;
  }
  return `Anomaly detected: Time=${notificationField(formatTime(time))}, Value=${value}, Score=${formatJavaFixed(score)}`;
}

function formatTime(time: unknown): string {
  if (typeof time === 'string') return time;
  if (time === undefined) return '';
  if (typeof time === 'object' && time !== null) return JSON.stringify(time);
  return String(time);
}
