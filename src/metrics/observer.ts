/**
 * The observer interface: how a pipeline (today AnomalyService, later the shared pipeline)
 * tells the metrics registry and the live page what it does, without either knowing the
 * other. Three calls:
 *
 *   attach(stats, info)  once the models are loaded and reading starts: where counters come
 *                        from (pulled at scrape time, so /metrics equals the pipeline's own
 *                        stats at that moment) and what a record looks like;
 *   scored(chunk)        after every detector call, synchronously, with the chunk's columns
 *                        (valid only during the call: copy what you keep);
 *   stopped(outcome)     once, when the pipeline has stopped.
 *
 * Observers must be cheap and must not throw into the pipeline (`safeObserver` guards).
 */

/** The pipeline's counters, as a snapshot (AnomalyService's ServiceStats fits this shape). */
export interface ObservedStats {
  uptimeSeconds: number;
  recordsRead: number;
  recordsScored: number;
  anomalies: number;
  badRecords: number;
  badRecordsByKind: Record<string, number>;
  deadLettered: { file: number; stream: number };
  outputRecords: number;
  /** Outcomes of handing notifications over: queued for SNS, summarised (over the rate), dropped (queue full). */
  notifications: { queued: number; suppressed: number; dropped: number };
  models: number;
  evictions: number;
  checkpoints: { saved: number; failed: number; lastSavedAt: string | undefined };
  source?: { shardsReading: number; shardsWaiting: number; shardsFinished: number; millisBehindLatest: Record<string, number> } | undefined;
  sns?: { published: number; suppressed: number; dropped: number; failed: number; summariesQueued: number } | undefined;
}

export interface StatsSource {
  stats(): ObservedStats;
}

/** What the records look like (for labels and explanations). */
export interface ObservedShape {
  /** Value field names, in order. */
  fields: readonly string[];
  keyed: boolean;
  shingleSize: number;
}

/** One scored detector call. The arrays belong to the pipeline and are reused afterwards. */
export interface ScoredChunk {
  count: number;
  /** Values per record. */
  dimensions: number;
  values: ArrayLike<number>;
  /** Model key per record (keyed pipelines). */
  keys: readonly string[] | undefined;
  score: ArrayLike<number>;
  threshold: ArrayLike<number>;
  /** 1 for an anomaly. */
  anomaly: ArrayLike<number>;
  /** Attribution per record (dimensions × shingleSize each), when explanations are on. */
  high?: ArrayLike<number> | undefined;
  low?: ArrayLike<number> | undefined;
  /** A stable id of record i (e.g. shardId:sequenceNumber), for the anomaly table. */
  recordId?: ((i: number) => string) | undefined;
  /** Wall time of the detector call, in milliseconds. */
  latencyMs: number;
}

export interface PipelineOutcome {
  exitCode: number;
  reason: string;
}

export interface PipelineObserver {
  attach(source: StatsSource, shape: ObservedShape): void;
  scored(chunk: ScoredChunk): void;
  stopped(outcome: PipelineOutcome): void;
}

/** Calls every observer in turn. */
export function combineObservers(...observers: PipelineObserver[]): PipelineObserver {
  return {
    attach: (s, shape) => observers.forEach((o) => o.attach(s, shape)),
    scored: (c) => observers.forEach((o) => o.scored(c)),
    stopped: (r) => observers.forEach((o) => o.stopped(r)),
  };
}

/** Wraps an observer so that its first error is reported and turns it off; nothing reaches the pipeline. */
export function safeObserver(observer: PipelineObserver, report: (error: unknown) => void): PipelineObserver {
  let failed = false;
  const guard = (fn: () => void): void => {
    if (failed) return;
    try {
      fn();
    } catch (error) {
      failed = true;
      report(error);
    }
  };
  return {
    attach: (s, shape) => guard(() => observer.attach(s, shape)),
    scored: (c) => guard(() => observer.scored(c)),
    stopped: (r) => guard(() => observer.stopped(r)),
  };
}
