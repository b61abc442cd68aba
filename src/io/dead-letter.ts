/**
 * Records input that could not be scored, one NDJSON line per rejected record:
 *
 *   {"line":12,"reason":"missing field \"value\"","input":"{\"time\":3}"}
 *   {"line":40,"reason":"invalid UTF-8","inputBase64":"/w=="}
 *   {"line":0,"reason":"...","input":"...","source":"shardId-000000000001/4959..."}
 *
 * `source` is a free-form locator for inputs where a line number is not enough
 * (e.g. Kinesis shard and sequence number). Inputs longer than 64 KiB are cut
 * and marked `"truncated":true`, so one huge record cannot bloat the file.
 * Counts per reason kind are kept in memory for the end-of-run summary.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { drained } from '../util/streams.js';

export const DEFAULT_MAX_INPUT_BYTES = 64 * 1024;

export interface DeadLetter {
  /** Line number in the input (1-based); use 0 when the input has no lines. */
  line: number;
  /** Human-readable reason, e.g. a ParseFailure's `reason`. */
  reason: string;
  /**
   * Category to count under (e.g. a ParseFailure's `kind`); defaults to `reason`.
   * Reasons often carry values, so pass a kind to keep the counts few.
   */
  kind?: string;
  /** The rejected text, or its raw bytes when they are not valid UTF-8 (written as base64). */
  input?: string | Uint8Array;
  /** Free-form locator of the record, such as "shardId-000000000000/49590338271490256608559692538361571095921575989136588898". */
  source?: string;
}

export interface DeadLetterWriterOptions {
  /** Longest input kept per entry, in bytes. Default 64 KiB. */
  maxInputBytes?: number;
  /** End the underlying stream on close(). Default true; false suits shared streams such as stderr. */
  endOnClose?: boolean;
}

export interface DeadLetterFileOptions extends DeadLetterWriterOptions {
  /** 'a' appends to an existing file (default), 'w' replaces it. */
  flags?: 'a' | 'w';
}

/** The JSON object written per entry; key order is the order written. */
interface DeadLetterEntry {
  line: number;
  reason: string;
  input?: string;
  inputBase64?: string;
  truncated?: true;
  source?: string;
}

export class DeadLetterWriter {
  readonly maxInputBytes: number;
  readonly #stream: Writable;
  readonly #endOnClose: boolean;
  readonly #counts = new Map<string, number>();
  #total = 0;
  #error: Error | undefined;
  #closed = false;
  /** The stream is a file we opened: close() also waits for its descriptor to be released. */
  #ownsFile = false;

  /** Opens (creating if needed) a dead-letter file; rejects if it cannot be opened. */
  static async open(path: string, options: DeadLetterFileOptions = {}): Promise<DeadLetterWriter> {
    const stream = createWriteStream(path, { flags: options.flags ?? 'a' });
    await once(stream, 'open');
    const writer = new DeadLetterWriter(stream, options);
    writer.#ownsFile = true;
    return writer;
  }

  /** Writes to any stream, e.g. for tests or stderr. */
  constructor(stream: Writable, options: DeadLetterWriterOptions = {}) {
    const max = options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new RangeError(`maxInputBytes: must be a non-negative integer, got ${String(max)}`);
    }
    this.maxInputBytes = max;
    this.#stream = stream;
    this.#endOnClose = options.endOnClose ?? true;
    // Kept until close() so a failing disk surfaces there rather than crashing the process.
    stream.on('error', (error: Error) => {
      this.#error ??= error;
    });
  }

  /** Entries written so far, by kind (or reason when no kind was given). */
  get counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  get total(): number {
    return this.#total;
  }

  /**
   * Queues one entry. Returns false when the stream's buffer is full; callers
   * producing many entries can then `await drain()`.
   * @throws the stream's error if writing has already failed, or if closed.
   */
  write(letter: DeadLetter): boolean {
    if (this.#error !== undefined) throw this.#error;
    if (this.#closed) throw new Error('DeadLetterWriter is closed');

    const entry: DeadLetterEntry = { line: letter.line, reason: letter.reason };
    const input = letter.input;
    if (typeof input === 'string') {
      const kept = truncateUtf8(input, this.maxInputBytes);
      entry.input = kept;
      if (kept.length !== input.length) entry.truncated = true;
    } else if (input !== undefined) {
      const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      if (bytes.length > this.maxInputBytes) {
        entry.inputBase64 = bytes.toString('base64', 0, this.maxInputBytes);
        entry.truncated = true;
      } else {
        entry.inputBase64 = bytes.toString('base64');
      }
    }
    if (letter.source !== undefined) entry.source = letter.source;

    const kind = letter.kind ?? letter.reason;
    this.#counts.set(kind, (this.#counts.get(kind) ?? 0) + 1);
    this.#total++;
    return this.#stream.write(`${JSON.stringify(entry)}\n`);
  }

  /** Resolves once the stream can take more (immediately if it already can). */
  async drain(): Promise<void> {
    const stream = this.#stream;
    if (!stream.writableNeedDrain || this.#error !== undefined) return;
    await drained(stream);
  }

  /** Flushes everything written and ends the stream (unless endOnClose is false). Rejects with any write error. */
  async close(): Promise<void> {
    if (this.#closed) {
      if (this.#error !== undefined) throw this.#error;
      return;
    }
    this.#closed = true;
    const stream = this.#stream;
    if (this.#error === undefined) {
      await new Promise<void>((resolve) => {
        if (this.#endOnClose) {
          const done = (): void => resolve();
          stream.once(this.#ownsFile ? 'close' : 'finish', done);
          stream.once('error', done);
          stream.end();
        } else {
          // An empty write's callback runs after everything queued before it.
          stream.write('', () => resolve());
        }
      });
    }
    if (this.#error !== undefined) throw this.#error;
  }
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  // A UTF-16 unit never takes more than 3 UTF-8 bytes: skip the encoding for short text.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}
