/**
 * The pipeline's counters as CloudWatch Embedded Metric Format (EMF) log lines, for the
 * Lambda handler: a JSON line on stdout with an `_aws.CloudWatchMetrics` directive becomes
 * metrics without a PutMetricData call. Pure: the caller passes the timestamp.
 *
 * CloudWatch sums values across lines, so pass what one invocation did (the difference of
 * two snapshots, see `statsDelta`), not running totals. One line carries the overall
 * counters; bad records get one line per kind with a `Kind` dimension. At most 100 metrics
 * per directive (EMF's limit), far above the ~16 written here.
 */
import type { PipelineStats, ScoredBatch } from '../pipeline/contracts.js';

export interface EmfOptions {
  /** Default "rcf-stream". */
  namespace?: string;
  /** Dimension name -> value, e.g. { FunctionName: 'detector' }; at most 30 (EMF's limit). */
  dimensions?: Record<string, string>;
  /** Milliseconds since the epoch. */
  timestamp: number;
}

/** The counters emfLines reads (PipelineStats fits; a Lambda invocation may leave parts out: see batchStats). */
export type EmfStats = Partial<Omit<PipelineStats, 'checkpoints' | 'source'>> & {
  checkpoints?: { saved: number; failed: number };
  source?: { millisBehindLatest: Record<string, number> };
};

type Unit = 'Count' | 'Milliseconds';

function line(namespace: string, dimensions: Record<string, string>, timestamp: number, metrics: [string, number, Unit][]): string {
  const body: Record<string, unknown> = {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [Object.keys(dimensions)], Metrics: metrics.map(([Name, , Unit]) => ({ Name, Unit })) }],
    },
    ...dimensions,
  };
  for (const [name, value] of metrics) body[name] = value;
  return JSON.stringify(body);
}

export function emfLines(stats: EmfStats, options: EmfOptions): string[] {
  const namespace = options.namespace ?? 'rcf-stream';
  const dims = options.dimensions ?? {};
  const names = Object.keys(dims);
  if (names.length > 30) throw new RangeError(`EMF allows at most 30 dimensions, got ${names.length}`);
  if (names.includes('Kind')) throw new RangeError('the dimension name "Kind" is taken by the bad-record lines');
  if (!Number.isFinite(options.timestamp)) throw new RangeError('timestamp must be a finite number of milliseconds');
  const m: [string, number, Unit][] = [];
  const add = (name: string, value: number | undefined, unit: Unit = 'Count'): void => {
    if (value !== undefined && Number.isFinite(value)) m.push([name, value, unit]);
  };
  add('RecordsRead', stats.recordsRead);
  add('RecordsScored', stats.recordsScored);
  add('Anomalies', stats.anomalies);
  add('BadRecords', stats.badRecords);
  if (stats.deadLettered !== undefined) add('DeadLetters', stats.deadLettered.file + stats.deadLettered.stream);
  add('OutputRecords', stats.outputRecords);
  add('NotificationsQueued', stats.notifications?.queued);
  add('NotificationsSummarised', stats.notifications?.suppressed);
  add('NotificationsDropped', stats.notifications?.dropped);
  add('NotificationsSent', stats.sns?.published);
  add('NotificationsFailed', stats.sns?.failed);
  add('CheckpointsSaved', stats.checkpoints?.saved);
  add('CheckpointFailures', stats.checkpoints?.failed);
  add('Models', stats.models);
  add('ModelEvictions', stats.evictions);
  const behind = Object.values(stats.source?.millisBehindLatest ?? {});
  if (behind.length > 0) add('MillisBehindLatest', Math.max(...behind), 'Milliseconds');
  const out: string[] = [];
  if (m.length > 0) out.push(line(namespace, dims, options.timestamp, m));
  for (const [kind, n] of Object.entries(stats.badRecordsByKind ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    out.push(line(namespace, { ...dims, Kind: kind }, options.timestamp, [['BadRecordsByKind', n, 'Count']]));
  }
  return out;
}

/** What happened between two snapshots of running totals (gauges such as Models and the lag: their latest value). */
export function statsDelta(before: EmfStats, after: EmfStats): EmfStats {
  const d = (a: number | undefined, b: number | undefined): number | undefined => (b === undefined ? undefined : b - (a ?? 0));
  const kinds: Record<string, number> = {};
  for (const [k, n] of Object.entries(after.badRecordsByKind ?? {})) {
    const diff = n - (before.badRecordsByKind?.[k] ?? 0);
    if (diff !== 0) kinds[k] = diff;
  }
  const out: EmfStats = {
    recordsRead: d(before.recordsRead, after.recordsRead),
    recordsScored: d(before.recordsScored, after.recordsScored),
    anomalies: d(before.anomalies, after.anomalies),
    badRecords: d(before.badRecords, after.badRecords),
    badRecordsByKind: kinds,
    outputRecords: d(before.outputRecords, after.outputRecords),
    models: after.models,
    evictions: d(before.evictions, after.evictions),
  };
  if (after.deadLettered !== undefined) out.deadLettered = { file: after.deadLettered.file - (before.deadLettered?.file ?? 0), stream: after.deadLettered.stream - (before.deadLettered?.stream ?? 0) };
  if (after.notifications !== undefined) {
    const b = before.notifications;
    out.notifications = { queued: after.notifications.queued - (b?.queued ?? 0), suppressed: after.notifications.suppressed - (b?.suppressed ?? 0), dropped: after.notifications.dropped - (b?.dropped ?? 0) };
  }
  if (after.sns !== undefined) {
    const b = before.sns;
    out.sns = {
      published: after.sns.published - (b?.published ?? 0),
      suppressed: after.sns.suppressed - (b?.suppressed ?? 0),
      dropped: after.sns.dropped - (b?.dropped ?? 0),
      failed: after.sns.failed - (b?.failed ?? 0),
      summariesQueued: after.sns.summariesQueued - (b?.summariesQueued ?? 0),
    };
  }
  if (after.checkpoints !== undefined) out.checkpoints = { saved: after.checkpoints.saved - (before.checkpoints?.saved ?? 0), failed: after.checkpoints.failed - (before.checkpoints?.failed ?? 0) };
  if (after.source !== undefined) out.source = after.source;
  return out;
}

/**
 * What one processed batch did, for emfLines (the Lambda: one invocation, one batch):
 *   for (const l of emfLines(batchStats(result.scored), { timestamp: Date.now() })) console.log(l);
 * Notification outcomes (sent, summarised) belong to the notification sink: merge them in when known.
 */
export function batchStats(batch: ScoredBatch): EmfStats {
  const kinds: Record<string, number> = {};
  for (const d of batch.deadLetters) {
    const kind = d.letter.kind ?? d.letter.reason;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return {
    recordsRead: batch.records,
    recordsScored: batch.scored,
    anomalies: batch.anomalies,
    badRecords: batch.deadLetters.length,
    badRecordsByKind: kinds,
    outputRecords: batch.outputs.length,
  };
}
