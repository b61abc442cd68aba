/**
 * KinesisSink: writes records to a Kinesis stream with PutRecords.
 *
 * `put()` resolves only when Kinesis accepted every entry. Requests hold at
 * most 500 records and 5 MiB (data + partition keys). After a partial failure
 * only the failed entries are sent again, with jittered exponential backoff;
 * after `maxAttempts` attempts the call throws KinesisSinkError, and the
 * caller must not checkpoint the input that produced those records.
 */
import { PutRecordsCommand, type KinesisClient, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { backoffDelay, classifyError, errorMessage, errorName, sleep, type BackoffOptions, type Logger } from './retry.js';
import { RcfStreamError } from '../util/errors.js';

export interface SinkEntry {
  data: Uint8Array;
  partitionKey: string;
  /** Decimal 128-bit hash key that overrides the partition key's shard mapping. */
  explicitHashKey?: string;
}

export interface KinesisSinkOptions {
  client: KinesisClient;
  streamName?: string;
  streamArn?: string;
  /** Attempts per entry before put() throws (first try included). Default 10. */
  maxAttempts?: number;
  /** Default base 100 ms, max 5 s. */
  backoff?: Partial<BackoffOptions>;
  /** Records per request, 1..500. Default 500. */
  maxRecordsPerRequest?: number;
  /** Bytes (data + partition keys) per request, up to 5 MiB. Default 5 MiB. */
  maxBytesPerRequest?: number;
  logger?: Logger;
  random?: () => number;
  /** Aborts waits and in-flight requests (then put() rejects). */
  signal?: AbortSignal;
}

export interface KinesisSinkStats {
  /** Entries Kinesis accepted. */
  recordsPut: number;
  putRecordsCalls: number;
  /** Entries sent again after a per-entry or whole-request failure. */
  retriedRecords: number;
  /** Requests sent again (each retry round counts once). */
  retries: number;
  /** Entries or requests rejected with throttling (ProvisionedThroughputExceeded, LimitExceeded...). */
  throttles: number;
  /** Entries failed with InternalFailure or requests failed with 5xx/network errors. */
  transientFailures: number;
  backoffMs: number;
}

/** Kinesis record size limit: data blob + partition key. */
export const MAX_RECORD_BYTES = 1024 * 1024;
export const MAX_REQUEST_RECORDS = 500;
export const MAX_REQUEST_BYTES = 5 * 1024 * 1024;
const MAX_HASH_KEY = (1n << 128n) - 1n;

export class KinesisSinkError extends RcfStreamError {
  override readonly name = 'KinesisSinkError';
  readonly code = 'KINESIS_SINK_FAILED';
  constructor(
    message: string,
    /** Entries not accepted by Kinesis when put() gave up. */
    readonly failedEntries: number,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

const utf8 = new TextEncoder();

function entryBytes(e: SinkEntry): number {
  return e.data.byteLength + utf8.encode(e.partitionKey).byteLength;
}

export class KinesisSink {
  private readonly client: KinesisClient;
  private readonly streamRef: { StreamName?: string; StreamARN?: string };
  private readonly label: string;
  private readonly maxAttempts: number;
  private readonly backoffOpts: BackoffOptions;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly signal: AbortSignal | undefined;
  private readonly counters: KinesisSinkStats = {
    recordsPut: 0,
    putRecordsCalls: 0,
    retriedRecords: 0,
    retries: 0,
    throttles: 0,
    transientFailures: 0,
    backoffMs: 0,
  };

  constructor(opts: KinesisSinkOptions) {
    if (opts.streamName === undefined && opts.streamArn === undefined) throw new Error('KinesisSink needs streamName or streamArn');
    this.client = opts.client;
    this.streamRef = {};
    if (opts.streamName !== undefined) this.streamRef.StreamName = opts.streamName;
    if (opts.streamArn !== undefined) this.streamRef.StreamARN = opts.streamArn;
    this.label = opts.streamName ?? opts.streamArn ?? '';
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 10);
    this.backoffOpts = { baseDelayMs: opts.backoff?.baseDelayMs ?? 100, maxDelayMs: opts.backoff?.maxDelayMs ?? 5_000 };
    this.maxRecords = Math.min(MAX_REQUEST_RECORDS, Math.max(1, opts.maxRecordsPerRequest ?? MAX_REQUEST_RECORDS));
    this.maxBytes = Math.min(MAX_REQUEST_BYTES, Math.max(MAX_RECORD_BYTES, opts.maxBytesPerRequest ?? MAX_REQUEST_BYTES));
    this.log = opts.logger ?? {};
    this.random = opts.random ?? Math.random;
    this.signal = opts.signal;
  }

  stats(): KinesisSinkStats {
    return { ...this.counters };
  }

  /**
   * Writes `entries`; resolves when all were accepted. Invalid entries (too
   * large, bad keys) are rejected before anything is sent.
   */
  async put(entries: readonly SinkEntry[]): Promise<void> {
    entries.forEach((e, i) => this.validate(e, i));
    let done = 0;
    for (const batch of this.batches(entries)) {
      try {
        await this.putBatch(batch);
      } catch (e) {
        if (!(e instanceof KinesisSinkError)) throw e;
        const notAttempted = entries.length - done - batch.length;
        if (notAttempted === 0) throw e;
        throw new KinesisSinkError(`${e.message}; ${notAttempted} later records were not attempted`, e.failedEntries + notAttempted, e.cause);
      }
      done += batch.length;
    }
  }

  private validate(e: SinkEntry, index: number): void {
    const pkChars = [...e.partitionKey].length;
    if (pkChars < 1 || pkChars > 256) {
      throw new KinesisSinkError(`Entry ${index}: partition key must be 1..256 characters, got ${pkChars}`, 0);
    }
    const size = entryBytes(e);
    if (size > MAX_RECORD_BYTES) {
      throw new KinesisSinkError(
        `Entry ${index}: record is ${size} bytes (data + partition key); Kinesis accepts at most ${MAX_RECORD_BYTES} bytes (1 MiB) per record`,
        0,
      );
    }
    if (e.explicitHashKey !== undefined) {
      if (!/^(0|[1-9]\d{0,38})$/.test(e.explicitHashKey) || BigInt(e.explicitHashKey) > MAX_HASH_KEY) {
        throw new KinesisSinkError(`Entry ${index}: explicitHashKey must be a decimal integer in 0..2^128-1`, 0);
      }
    }
  }

  private *batches(entries: readonly SinkEntry[]): Generator<SinkEntry[]> {
    let batch: SinkEntry[] = [];
    let bytes = 0;
    for (const e of entries) {
      const size = entryBytes(e);
      if (batch.length > 0 && (batch.length >= this.maxRecords || bytes + size > this.maxBytes)) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push(e);
      bytes += size;
    }
    if (batch.length > 0) yield batch;
  }

  private async putBatch(batch: SinkEntry[]): Promise<void> {
    let pending = batch;
    let lastError = '';
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) {
        this.counters.retries++;
        this.counters.retriedRecords += pending.length;
        const delay = backoffDelay(attempt - 1, this.backoffOpts, this.random);
        this.counters.backoffMs += delay;
        await sleep(delay, this.signal);
      }
      if (this.signal?.aborted) throw new KinesisSinkError(`put to ${this.label} aborted with ${pending.length} records unsent`, pending.length);
      const records: PutRecordsRequestEntry[] = pending.map((e) => {
        const r: PutRecordsRequestEntry = { Data: e.data, PartitionKey: e.partitionKey };
        if (e.explicitHashKey !== undefined) r.ExplicitHashKey = e.explicitHashKey;
        return r;
      });
      let res;
      try {
        this.counters.putRecordsCalls++;
        res = await this.client.send(new PutRecordsCommand({ ...this.streamRef, Records: records }), this.signal ? { abortSignal: this.signal } : {});
      } catch (e) {
        if (this.signal?.aborted) throw new KinesisSinkError(`put to ${this.label} aborted with ${pending.length} records unsent`, pending.length, e);
        const cls = classifyError(e);
        if (cls !== 'throttle' && cls !== 'retryable') {
          throw new KinesisSinkError(`PutRecords to ${this.label} failed: ${errorMessage(e)}`, pending.length, e);
        }
        // The whole request failed; with a 5xx some entries may have been stored (at-least-once).
        if (cls === 'throttle') this.counters.throttles++;
        else this.counters.transientFailures++;
        lastError = errorMessage(e);
        this.log.debug?.('PutRecords request failed; retrying', { stream: this.label, error: errorName(e), records: pending.length });
        continue;
      }
      const results = res.Records ?? [];
      if (results.length !== pending.length) {
        // Without a 1:1 answer we cannot tell which entries failed; sending all again is the safe side.
        lastError = `response has ${results.length} results for ${pending.length} records`;
        this.counters.transientFailures++;
        continue;
      }
      const failed: SinkEntry[] = [];
      results.forEach((r, i) => {
        if (r.ErrorCode) {
          failed.push(pending[i]!);
          if (r.ErrorCode === 'ProvisionedThroughputExceededException' || r.ErrorCode.includes('Throttl')) this.counters.throttles++;
          else this.counters.transientFailures++;
          lastError = `${r.ErrorCode}: ${r.ErrorMessage ?? ''}`;
        }
      });
      this.counters.recordsPut += pending.length - failed.length;
      if (failed.length === 0) return;
      this.log.debug?.('PutRecords partial failure; retrying failed entries', { stream: this.label, failed: failed.length, of: pending.length });
      pending = failed;
    }
    throw new KinesisSinkError(
      `PutRecords to ${this.label}: ${pending.length} of ${batch.length} records still not accepted after ${this.maxAttempts} attempts (last error: ${lastError})`,
      pending.length,
    );
  }
}
