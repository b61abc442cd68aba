/**
 * Splits a byte stream (a file, stdin, any `Readable`) into text lines for the
 * NDJSON and CSV inputs.
 *
 * Lines are split on LF, a CR before the LF is dropped, and the last line may
 * lack a newline. Empty lines are skipped but still count in line numbers, so
 * numbers match what an editor shows. A line that is too long or is not valid
 * UTF-8 is reported as an error line instead of ending the stream, so one bad
 * record cannot stop a long-running job.
 *
 * Lines come one at a time (`for await (const line of reader)`) or a chunk's worth at a
 * time (`reader.batches()`), which saves an await per line on busy pipelines.
 */
import { isAscii, isUtf8 } from 'node:buffer';

/** Why a line could not be turned into text. */
export type LineError = 'line too long' | 'invalid UTF-8';

interface LineLocation {
  /** 1-based, counting every line of the input, empty ones included. */
  lineNumber: number;
  /** Offset in the stream of the line's first byte. */
  byteOffset: number;
  /** Length of the line in bytes, without its CR/LF terminator. */
  byteLength: number;
}

export interface TextLine extends LineLocation {
  text: string;
  error?: undefined;
  raw?: undefined;
}

export interface ErrorLine extends LineLocation {
  text?: undefined;
  error: LineError;
  /**
   * The line's bytes, for 'invalid UTF-8' only, so they can be dead-lettered
   * as they were received. Over-long lines are never buffered, so have none.
   */
  raw?: Uint8Array;
}

export type Line = TextLine | ErrorLine;

/** Anything yielding bytes: a `Readable` (without `setEncoding`), or a test double. */
export type ByteSource = AsyncIterable<Uint8Array | string>;

export interface LineReaderOptions {
  /** Longest accepted line in bytes, terminator excluded. Default 1 MiB. */
  maxLineBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

const LF = 10;
const CR = 13;
/** Most bytes of ASCII lines decoded as one string (lines are slices of it). */
const DECODE_PIECE_BYTES = 32 * 1024;

/**
 * Single-use async iterable of the lines of `source`.
 *
 * ```ts
 * const reader = new LineReader(process.stdin);
 * for await (const line of reader) { if (line.error) ...; else use(line.text); }
 * ```
 */
export class LineReader implements AsyncIterable<Line> {
  readonly maxLineBytes: number;
  readonly #source: ByteSource;
  // fatal: a replacement character would silently change a record's values.
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  #bytesRead = 0;
  #lineNumber = 0;
  #started = false;

  constructor(source: ByteSource, options: LineReaderOptions = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxLineBytes: must be a positive integer, got ${String(max)}`);
    }
    this.maxLineBytes = max;
    this.#source = source;
  }

  /** Bytes received from the source so far (may run up to one chunk ahead of the lines yielded). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Number of the last line reached, including skipped empty lines. */
  get lineNumber(): number {
    return this.#lineNumber;
  }

  [Symbol.asyncIterator](): AsyncIterator<Line> {
    return this.#lines(this.#start());
  }

  /**
   * The same lines, grouped: one array per chunk read from the source (never an empty
   * one), so a consumer pays one await per chunk instead of one per line. Single-use,
   * like iterating the reader itself (only one of the two may be used).
   *
   * ```ts
   * for await (const lines of reader.batches()) for (const line of lines) use(line);
   * ```
   */
  batches(): AsyncIterable<Line[]> {
    const batches = this.#start();
    return { [Symbol.asyncIterator]: () => batches };
  }

  #start(): AsyncGenerator<Line[], void, undefined> {
    if (this.#started) throw new Error('LineReader can only be iterated once');
    this.#started = true;
    return this.#batches();
  }

  async *#lines(batches: AsyncGenerator<Line[], void, undefined>): AsyncGenerator<Line, void, undefined> {
    for await (const lines of batches) for (const line of lines) yield line;
  }

  async *#batches(): AsyncGenerator<Line[], void, undefined> {
    const max = this.maxLineBytes;
    // Pieces of the current line seen in earlier chunks (views, not copies).
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    // The current line is already known to be too long; its bytes are dropped as they arrive.
    let skipping = false;
    let lineStart = 0;
    // Last byte of the previous chunk: needed to see a CR when a chunk starts with the LF.
    let previousByte = -1;

    for await (const piece of this.#source) {
      const chunk = toBuffer(piece);
      if (chunk.length === 0) continue;
      const chunkStart = this.#bytesRead;
      this.#bytesRead += chunk.length;
      const lines: Line[] = [];
      let pos = 0;
      const lastNl = chunk.lastIndexOf(LF);

      if (lastNl !== -1) {
        if (skipping || pendingBytes > 0) {
          // The line begun in earlier chunks ends at this chunk's first LF.
          const nl = chunk.indexOf(LF);
          const lineNumber = ++this.#lineNumber;
          const withCr = chunkStart + nl - lineStart;
          const byteBeforeLf = nl > 0 ? chunk[nl - 1] : previousByte;
          const byteLength = withCr > 0 && byteBeforeLf === CR ? withCr - 1 : withCr;
          if (skipping || byteLength > max) {
            lines.push({ lineNumber, byteOffset: lineStart, byteLength, error: 'line too long' });
          } else if (byteLength > 0) {
            pending.push(chunk.subarray(0, nl));
            const bytes = Buffer.concat(pending, pendingBytes + nl).subarray(0, byteLength);
            const line = this.#decode(bytes, lineNumber, lineStart);
            if (line !== undefined) lines.push(line);
          }
          skipping = false;
          pending.length = 0;
          pendingBytes = 0;
          pos = nl + 1;
        }
        // Every other complete line lies wholly in this chunk.
        if (pos <= lastNl) this.#scan(chunk, pos, lastNl + 1, chunkStart, lines);
        pos = lastNl + 1;
        lineStart = chunkStart + pos;
      }

      // The start of a line that ends in a later chunk.
      if (!skipping && pos < chunk.length) {
        const rest = chunk.length - pos;
        // +1: the line may still end in a CR that does not count toward the limit.
        if (pendingBytes + rest > max + 1) {
          skipping = true;
          pending.length = 0;
          pendingBytes = 0;
        } else {
          pending.push(chunk.subarray(pos));
          pendingBytes += rest;
        }
      }
      previousByte = chunk[chunk.length - 1]!;
      if (lines.length > 0) yield lines;
    }

    // A final line without a newline.
    const withCr = this.#bytesRead - lineStart;
    if (withCr === 0) return;
    const lineNumber = ++this.#lineNumber;
    const byteLength = previousByte === CR ? withCr - 1 : withCr;
    if (skipping || byteLength > max) {
      yield [{ lineNumber, byteOffset: lineStart, byteLength, error: 'line too long' }];
    } else if (byteLength > 0) {
      const bytes = Buffer.concat(pending, pendingBytes).subarray(0, byteLength);
      const line = this.#decode(bytes, lineNumber, lineStart);
      if (line !== undefined) yield [line];
    }
  }

  /**
   * Adds the lines of chunk[start, end), which ends with an LF, to `lines`. The region is
   * checked once: pure ASCII (the common case) is decoded as one string and cut into
   * lines there; valid UTF-8 is decoded line by line without further checks; anything
   * else goes line by line through the fatal decoder, which finds the bad lines.
   */
  #scan(chunk: Buffer, start: number, end: number, chunkStart: number, lines: Line[]): void {
    const max = this.maxLineBytes;
    const region = chunk.subarray(start, end);
    if (isAscii(region)) {
      // ASCII: one byte per character, so string indices are byte offsets. Decoded in
      // pieces of whole lines: V8 allocates strings over ~128 KiB far more slowly.
      let a = start;
      while (a < end) {
        let b = end;
        if (end - a > DECODE_PIECE_BYTES) {
          b = chunk.lastIndexOf(LF, a + DECODE_PIECE_BYTES - 1) + 1;
          if (b <= a) b = chunk.indexOf(LF, a + DECODE_PIECE_BYTES) + 1;
        }
        const text = chunk.toString('latin1', a, b);
        const base = chunkStart + a;
        let p = 0;
        while (p < text.length) {
          const nl = text.indexOf('\n', p);
          const lineNumber = ++this.#lineNumber;
          const e = nl > p && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
          const byteLength = e - p;
          if (byteLength > max) lines.push({ lineNumber, byteOffset: base + p, byteLength, error: 'line too long' });
          else if (byteLength > 0) lines.push({ lineNumber, byteOffset: base + p, byteLength, text: text.slice(p, e) });
          p = nl + 1;
        }
        a = b;
      }
      return;
    }
    const valid = isUtf8(region);
    let p = start;
    while (p < end) {
      const nl = chunk.indexOf(LF, p);
      const lineNumber = ++this.#lineNumber;
      const e = nl > p && chunk[nl - 1] === CR ? nl - 1 : nl;
      const byteLength = e - p;
      const byteOffset = chunkStart + p;
      if (byteLength > max) {
        lines.push({ lineNumber, byteOffset, byteLength, error: 'line too long' });
      } else if (byteLength > 0) {
        if (valid) {
          // As the decoder does, drop one leading byte order mark; a BOM-only line is empty.
          const from = byteLength >= 3 && chunk[p] === 0xef && chunk[p + 1] === 0xbb && chunk[p + 2] === 0xbf ? p + 3 : p;
          if (from < e) lines.push({ lineNumber, byteOffset, byteLength, text: chunk.toString('utf8', from, e) });
        } else {
          const line = this.#decode(chunk.subarray(p, e), lineNumber, byteOffset);
          if (line !== undefined) lines.push(line);
        }
      }
      p = nl + 1;
    }
  }

  #decode(bytes: Buffer, lineNumber: number, byteOffset: number): Line | undefined {
    let text: string;
    try {
      text = this.#decoder.decode(bytes);
    } catch {
      return { lineNumber, byteOffset, byteLength: bytes.length, error: 'invalid UTF-8', raw: bytes };
    }
    // The decoder drops a leading byte order mark, so a BOM-only line is empty too.
    if (text.length === 0) return undefined;
    return { lineNumber, byteOffset, byteLength: bytes.length, text };
  }
}

function toBuffer(piece: Uint8Array | string): Buffer {
  if (typeof piece === 'string') return Buffer.from(piece, 'utf8');
  if (Buffer.isBuffer(piece)) return piece;
  return Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
}

/** Convenience for `new LineReader(source, options)`. */
export function readLines(source: ByteSource, options?: LineReaderOptions): LineReader {
  return new LineReader(source, options);
}
