/**
 * The Source of a line input (a file or stdin, NDJSON or CSV): the lines LineReader splits
 * off the bytes, as batches of the one partition `input`, each record carrying its line
 * number and byte offset, each batch the position after its last line.
 *
 *   bytes -> LineReader -> lines -> batches of up to LINE_BATCH_RECORDS records -> BatchProcessor
 *
 * A batch is yielded when full, and also as soon as the input pauses (the next chunk of
 * bytes is not there by the time the event loop would otherwise idle), so a slow live
 * stream is not held back waiting for a full batch. Lines LineReader could not read (over
 * the size limit, invalid UTF-8) stay records: the BatchProcessor sets them aside as dead
 * letters, in line order with the rest. With `header` (CSV), the first readable line is
 * not a record but the batch's `header`; the lines before it come in a batch of their own.
 */
import { LineReader, DEFAULT_MAX_LINE_BYTES, type ByteSource, type Line } from '../io/line-reader.js';
import type { PipelineRecord, Source, SourceBatch } from './contracts.js';

/** The partition (shardId) of every record of a line input. */
export const LINE_PARTITION = 'input';
/** Records per batch: one detector call (CHUNK_RECORDS in batch-processor.ts). */
export const LINE_BATCH_RECORDS = 2048;

const NO_BYTES = new Uint8Array(0);

/** One line as a pipeline record: its text (or raw bytes, or why it could not be read) and where it was. */
export class LineRecord implements PipelineRecord {
  constructor(
    readonly line: number,
    /** Offset of the line's first byte in the input. */
    readonly byteOffset: number,
    /** Length of the line in bytes, terminator excluded. */
    readonly byteLength: number,
    readonly text: string | undefined,
    /** The line's bytes when they are not valid UTF-8 (dead-lettered as they came); else empty. */
    readonly data: Uint8Array,
    readonly rejected: { reason: string; kind: string } | undefined,
  ) {}

  get shardId(): string {
    return LINE_PARTITION;
  }

  /** The line number, as the position a checkpoint would hold. */
  get sequenceNumber(): string {
    return String(this.line);
  }

  get partitionKey(): string {
    return '';
  }
}

export interface LineBatch extends SourceBatch {
  records: LineRecord[];
  /** The batch's last line (its number) and the offset just past that line's bytes (terminator excluded). */
  end: { line: number; byteOffset: number };
  /** With `header`: the header line, on the first batch after it (records follow the header). */
  header?: { text: string; line: number };
}

export interface LineSourceOptions {
  /** Longest line in bytes, terminator excluded (default 1 MiB). */
  maxLineBytes?: number;
  /** The first readable line is a header (CSV). */
  header?: boolean;
  /** Most records per batch (default LINE_BATCH_RECORDS). */
  batchRecords?: number;
}

/** Resolves on the event loop's next check phase: after any I/O already waiting was handled. */
const PAUSED = Symbol('paused');
function nextTurn(): Promise<typeof PAUSED> {
  return new Promise((resolve) => setImmediate(() => resolve(PAUSED)));
}

export class LineSource implements Source {
  readonly maxLineBytes: number;
  readonly #input: ByteSource & { destroy?: () => void };
  readonly #reader: LineReader;
  readonly #header: boolean;
  readonly #batchRecords: number;
  #stopped = false;
  #ended = false;
  /** Last line of the last batch handed over. */
  #handedOver = 0;

  constructor(input: ByteSource & { destroy?: () => void }, options: LineSourceOptions = {}) {
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#input = input;
    this.#reader = new LineReader(input, { maxLineBytes: this.maxLineBytes });
    this.#header = options.header === true;
    this.#batchRecords = options.batchRecords ?? LINE_BATCH_RECORDS;
  }

  /** Bytes received so far (may run up to one chunk ahead of the batches). */
  get bytesRead(): number {
    return this.#reader.bytesRead;
  }

  /**
   * Lines read: every line (empty ones included) once the input was read to its end;
   * before that (stopped early), up to the last line handed over in a batch.
   */
  get linesRead(): number {
    return this.#ended ? this.#reader.lineNumber : this.#handedOver;
  }

  /** The input was read to its end. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stops reading (the input is destroyed); the iteration then ends without an error. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#input.destroy?.();
  }

  /** The input's batches, in order; single use. Rejects with the input's error unless stopped. */
  async *start(): AsyncGenerator<LineBatch, void, undefined> {
    const lines = this.#reader.batches()[Symbol.asyncIterator]();
    const max = this.#batchRecords;
    let records: LineRecord[] = [];
    let header: LineBatch['header'] = undefined;
    let wantHeader = this.#header;
    const batch = (): LineBatch => {
      const last = records[records.length - 1];
      const end = last !== undefined ? { line: last.line, byteOffset: last.byteOffset + last.byteLength } : { line: header?.line ?? this.#handedOver, byteOffset: this.bytesRead };
      const out: LineBatch = { shardId: LINE_PARTITION, records, checkpoint: { sequenceNumber: String(end.line) }, shardEnded: false, end };
      if (header !== undefined) out.header = header;
      header = undefined;
      records = [];
      this.#handedOver = end.line;
      return out;
    };
    try {
      let next = lines.next();
      for (;;) {
        let got: IteratorResult<Line[], void> | typeof PAUSED;
        if (records.length > 0 || header !== undefined) {
          // Records in hand: hand them over now unless more bytes are already waiting.
          got = await Promise.race([next, nextTurn()]);
          if (got === PAUSED) {
            yield batch();
            got = await next;
          }
        } else got = await next;
        if (got.done === true) break;
        for (const line of got.value) {
          if (line.error !== undefined) {
            const rejected = line.error === 'line too long' ? { reason: `line too long (${line.byteLength} bytes; the limit is ${this.maxLineBytes})`, kind: 'line too long' } : undefined;
            records.push(new LineRecord(line.lineNumber, line.byteOffset, line.byteLength, undefined, line.raw ?? NO_BYTES, rejected));
          } else if (wantHeader) {
            wantHeader = false;
            if (records.length > 0) yield batch();
            header = { text: line.text, line: line.lineNumber };
            continue;
          } else records.push(new LineRecord(line.lineNumber, line.byteOffset, line.byteLength, line.text, NO_BYTES, undefined));
          if (records.length >= max) yield batch();
        }
        next = lines.next();
      }
      this.#ended = true;
      if (records.length > 0 || header !== undefined) {
        const last = batch();
        last.shardEnded = true;
        yield last;
      }
    } catch (error) {
      // stop() destroyed the input: the end of the iteration, not an error.
      if (!this.#stopped) throw error;
    } finally {
      this.#input.destroy?.();
    }
  }
}
