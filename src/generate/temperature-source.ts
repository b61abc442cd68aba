/**
 * The temperature generator as a pipeline Source (src/pipeline/contracts.ts): one
 * partition, `temperature`, whose records are the generator's NDJSON lines
 * (`{"time":t,"value":v}`) with sequence numbers 0, 1, 2, ... Unpaced, it yields batches
 * as fast as they are taken; with a rate, it yields what is due every tick, so a
 * consumer that falls behind gets larger batches (at most `batchRecords`), never an
 * ever-growing backlog of ticks. It ends when the series ends or on stop().
 *
 * The generator knows which records are injected outliers; `labels` tells them for the
 * records of the batch last yielded (what a demo's tally needs, kept out of the data).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { PipelineRecord, Source, SourceBatch } from '../pipeline/contracts.js';
import { TemperatureSeries, type TemperatureOptions } from './temperature.js';

export const TEMPERATURE_SHARD = 'temperature';

export interface TemperatureSourceOptions extends TemperatureOptions {
  /** Records per second; undefined: unpaced. */
  rate?: number | undefined;
  /** Most records per batch. */
  batchRecords?: number;
  /** Pacing tick (ms). */
  tickMs?: number;
  /** Milliseconds, monotonic (injectable for tests). */
  now?: () => number;
}

export class TemperatureSource implements Source {
  readonly series: TemperatureSeries;
  readonly #rate: number | undefined;
  readonly #batchRecords: number;
  readonly #tickMs: number;
  readonly #now: () => number;
  #produced = 0;
  #stopped = false;
  #wake: (() => void) | undefined;
  /** Sequence number of the first record of the last batch, and its labels. */
  #first = 0;
  #outlier = new Uint8Array(0);
  #value = new Float64Array(0);

  constructor(options: TemperatureSourceOptions = {}) {
    this.series = new TemperatureSeries(options);
    this.#rate = options.rate;
    this.#batchRecords = options.batchRecords ?? 1024;
    this.#tickMs = options.tickMs ?? 100;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Records yielded so far. */
  get produced(): number {
    return this.#produced;
  }

  /** The last batch yielded: its first sequence number, which records are injected outliers, their values. */
  get labels(): { first: number; outlier: Uint8Array; value: Float64Array } {
    return { first: this.#first, outlier: this.#outlier, value: this.#value };
  }

  async *start(): AsyncIterable<SourceBatch> {
    const started = this.#now();
    let batches = 0;
    while (!this.#stopped) {
      let limit = this.#batchRecords;
      if (this.#rate !== undefined) {
        const due = Math.floor(((this.#now() - started) / 1000) * this.#rate) + 1 - this.#produced;
        limit = Math.min(due, this.#batchRecords);
      }
      if (limit > 0) {
        const batch = this.#next(limit);
        if (batch === undefined) return;
        yield batch;
        if (batch.shardEnded) return;
      }
      if (this.#rate !== undefined) await this.#sleep(this.#tickMs);
      // Unpaced: let signals (Ctrl-C) through now and then on long runs.
      else if (++batches % 64 === 0) await yieldToEventLoop();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
  }

  #next(limit: number): SourceBatch | undefined {
    const s = this.series;
    const records: PipelineRecord[] = [];
    const outlier = new Uint8Array(limit);
    const value = new Float64Array(limit);
    const first = this.#produced;
    while (records.length < limit && s.advance()) {
      outlier[records.length] = s.outlier ? 1 : 0;
      value[records.length] = s.value;
      const seq = String(first + records.length);
      records.push({ shardId: TEMPERATURE_SHARD, sequenceNumber: seq, partitionKey: String(s.time), data: Buffer.from(`{"time":${s.time},"value":${s.value}}`, 'utf8') });
    }
    if (records.length === 0) return undefined;
    this.#first = first;
    this.#outlier = outlier.subarray(0, records.length);
    this.#value = value.subarray(0, records.length);
    this.#produced += records.length;
    const last = records[records.length - 1]!;
    // Fewer than asked for: the series has ended.
    return { shardId: TEMPERATURE_SHARD, records, checkpoint: { sequenceNumber: last.sequenceNumber }, shardEnded: records.length < limit };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
