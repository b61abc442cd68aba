/**
 * The Prometheus registry of a pipeline (prom-client). Counters are not kept twice: at
 * every scrape they are read from the pipeline's own stats (`started`'s stats source), so a scrape
 * shows exactly what the pipeline counted at that moment. Only the scoring latency is
 * observed here (a histogram fed by `batchScored`). Process metrics come from prom-client's
 * default collectors (CPU, memory, event-loop lag, handles).
 *
 * Per-shard lag is MillisBehindLatest as GetRecords reports it; records behind the tip are
 * not reported (Kinesis gives no such count to a consumer).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchScoredEvent, PipelineObserver, PipelineStats } from '../pipeline/contracts.js';


export const METRIC_PREFIX = 'rcf_';

export interface PipelineMetricsOptions {
  /** Collect prom-client's process metrics too. Default true. */
  processMetrics?: boolean;
  /** Wall clock in ms (tests inject one). */
  now?: () => number;
}

export class PipelineMetrics implements PipelineObserver {
  readonly registry = new Registry();
  readonly #now: () => number;
  readonly #started: number;
  #source: { stats(): PipelineStats } | undefined;
  /** The snapshot of the scrape under way (one stats() call per scrape). */
  #snapshot: PipelineStats | undefined;
  readonly #latency: Histogram;
  #scrapes: Promise<unknown> = Promise.resolve();

  constructor(options: PipelineMetricsOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    const self = this;
    const counter = (name: string, help: string, read: (s: PipelineStats) => number): void => {
      new Counter({
        name: METRIC_PREFIX + name,
        help,
        registers,
        collect() {
          const s = self.#snapshot;
          this.reset();
          if (s !== undefined) this.inc(read(s));
        },
      });
    };
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: PipelineStats) => void): void => {
      new Gauge({
        name: METRIC_PREFIX + name,
        help,
        labelNames,
        registers,
        collect() {
          const s = self.#snapshot;
          this.reset();
          if (s !== undefined) fill(this, s);
        },
      });
    };
    counter('records_read_total', 'Records taken from the input (after KPL de-aggregation).', (s) => s.recordsRead);
    counter('records_scored_total', 'Records scored.', (s) => s.recordsScored);
    counter('anomalies_total', 'Records found anomalous.', (s) => s.anomalies);
    counter('output_records_total', 'Output records accepted by the output stream (or written to stdout).', (s) => s.outputRecords);
    new Counter({
      name: `${METRIC_PREFIX}bad_records_total`,
      help: 'Records set aside, by kind (invalid UTF-8, malformed JSON, missing field, ...).',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = self.#snapshot;
        this.reset();
        if (s === undefined) return;
        for (const [kind, n] of Object.entries(s.badRecordsByKind)) this.labels({ kind }).inc(n);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}dead_letters_total`,
      help: 'Dead letters written, by sink (file or stream).',
      labelNames: ['sink'],
      registers,
      collect() {
        const s = self.#snapshot;
        this.reset();
        if (s === undefined) return;
        this.labels({ sink: 'file' }).inc(s.deadLettered.file);
        this.labels({ sink: 'stream' }).inc(s.deadLettered.stream);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}notifications_total`,
      help: 'Anomaly notifications by outcome: queued (handed to the SNS publisher), sent (accepted by SNS), summarised (over the rate limit, counted in a summary), dropped (queue full or closed), failed (SNS refused for good).',
      labelNames: ['outcome'],
      registers,
      collect() {
        const s = self.#snapshot;
        this.reset();
        if (s === undefined) return;
        this.labels({ outcome: 'queued' }).inc(s.notifications.queued);
        this.labels({ outcome: 'summarised' }).inc(s.notifications.suppressed);
        this.labels({ outcome: 'dropped' }).inc(Math.max(s.notifications.dropped, s.sns?.dropped ?? 0));
        this.labels({ outcome: 'sent' }).inc(s.sns?.published ?? 0);
        this.labels({ outcome: 'failed' }).inc(s.sns?.failed ?? 0);
      },
    });
    counter('notification_summaries_total', 'Summary messages queued for notifications over the rate limit.', (s) => s.sns?.summariesQueued ?? 0);
    counter('checkpoints_saved_total', 'Checkpoints (positions and models) saved.', (s) => s.checkpoints.saved);
    counter('checkpoint_failures_total', 'Checkpoint saves that failed.', (s) => s.checkpoints.failed);
    gauge('checkpoint_age_seconds', 'Seconds since the last checkpoint saved, or since start when none was saved yet.', [], (g, s) => {
      const at = s.checkpoints.lastSavedAt !== undefined ? Date.parse(s.checkpoints.lastSavedAt) : this.#started;
      g.set(Math.max(0, (this.#now() - at) / 1000));
    });
    gauge('shard_millis_behind_latest', 'MillisBehindLatest of the last GetRecords, per shard.', ['shard'], (g, s) => {
      for (const [shard, ms] of Object.entries(s.source?.millisBehindLatest ?? {})) g.labels({ shard }).set(ms);
    });
    gauge('shards', 'Shards by state: reading, waiting (for a parent or for space), finished.', ['state'], (g, s) => {
      if (s.source === undefined) return;
      g.labels({ state: 'reading' }).set(s.source.shardsReading);
      g.labels({ state: 'waiting' }).set(s.source.shardsWaiting);
      g.labels({ state: 'finished' }).set(s.source.shardsFinished);
    });
    gauge('models', 'Models held (one per key with a key field).', [], (g, s) => g.set(s.models));
    counter('model_evictions_total', 'Models dropped to respect the key limit (least recently used).', (s) => s.evictions);
    gauge('uptime_seconds', 'Seconds since the pipeline started.', [], (g, s) => g.set(s.uptimeSeconds));
    this.#latency = new Histogram({
      name: `${METRIC_PREFIX}scoring_batch_seconds`,
      help: 'Wall time of one detector call (up to 2048 records).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }

  // --- PipelineObserver: the last stats stay readable after the stop (the source keeps answering).

  started(event: { stats: { stats(): PipelineStats } }): void {
    this.#source = event.stats;
  }

  batchScored(event: BatchScoredEvent): void {
    this.#latency.observe(event.latencyMs / 1000);
  }

  /** The text format of every metric, from one stats() snapshot; also returns that snapshot. */
  scrape(): Promise<{ text: string; stats: PipelineStats | undefined; contentType: string }> {
    // One scrape at a time: the collectors read the snapshot of their own scrape.
    const next = this.#scrapes.then(() => this.#scrapeNow());
    this.#scrapes = next.catch(() => undefined);
    return next;
  }

  async #scrapeNow(): Promise<{ text: string; stats: PipelineStats | undefined; contentType: string }> {
    const stats = this.#source?.stats();
    this.#snapshot = stats;
    try {
      return { text: await this.registry.metrics(), stats, contentType: this.registry.contentType };
    } finally {
      this.#snapshot = undefined;
    }
  }
}
