/**
 * The Lambda record path for one shard's batch, in one module so it can later
 * move onto the shared pipeline's batch API:
 *
 *   load state (S3, warm) -> skip records at or below its position
 *     -> decode + parse -> detector -> format -> deliver in record order
 *        (output stream or stdout, dead letters, SNS, each acknowledged)
 *     -> conditional save of models + position (one PUT)
 *
 * Guarantees, per shard:
 * - Scores: records are learned in sequence order, once, by the model stored
 *   for the shard, so they get exactly the scores `rcf-stream detect` gives
 *   the same records in order, whatever the batch boundaries and retries.
 * - A record that cannot be scored becomes a dead letter with its reason; the
 *   batch goes on.
 * - Delivery is at least once: the position moves past a record only after
 *   its output, dead letter and notification were accepted. When delivery
 *   fails at chunk k, the chunks before it are committed (the stored models
 *   re-learn exactly those records, a deterministic replay) and the batch
 *   reports a failure from the first undelivered record.
 * - Nothing is learned twice: a save that finds the stored state changed
 *   (another invocation on the same shard) fails; the retry starts from the
 *   stored state and skips what it covers.
 */
import type { Writable } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SNSClient } from '@aws-sdk/client-sns';
import { KinesisSink, MAX_RECORD_BYTES, type SinkEntry } from '../aws/kinesis-sink.js';
import type { SourceRecord } from '../aws/kinesis-source.js';
import { SnsNotifier, type Notification } from '../aws/sns-notifier.js';
import { errorMessage } from '../aws/retry.js';
import type { ShardCheckpoint } from '../checkpoint/checkpoint-store.js';
import { DetectionBatch, type RecordDetector } from '../detect/detector.js';
import { isAdaptive } from '../detect/strategy.js';
import { DeadLetterWriter, type DeadLetter } from '../io/dead-letter.js';
import { createRecordParser, type RecordParser } from '../io/record-parser.js';
import { formatNotification } from '../cli/output.js';
import type { ServiceConfig } from '../service/config.js';
import type { ServiceLogger } from '../service/logger.js';
import { decodeText, explanationAt, outputPartitionKey, outputRecord, recordId, type OutputShape } from '../service/records.js';
import { deadLetterEntry } from '../service/service.js';
import { StateConflictError, type ShardState, type ShardStateStore } from './shard-state.js';

/** Records per detector call. */
const CHUNK = 2048;
/** Records per delivery step: the granularity of a partial commit. */
export const DELIVERY_RECORDS = 500;

export interface ShardBatchRequest {
  /** Stream name (part of the state's object key). */
  stream: string;
  shardId: string;
  /** The shard's records in sequence order (KPL aggregates already split, with subSequence). */
  records: SourceRecord[];
  /** Deliveries give up (and the batch reports a failure) after this; default: never. */
  deadline?: number;
}

export interface ShardBatchStats {
  records: number;
  /** At or below the stored position: learned by an earlier invocation. */
  skipped: number;
  scored: number;
  anomalies: number;
  deadLetters: number;
  outputs: number;
  notifications: number;
  /** Records delivered and committed by this invocation. */
  committed: number;
  state: { source: ShardState['source'] | 'none'; readBytes: number; writtenBytes: number };
  /** Wall time per step; `decode`/`encode` (model (de)serialisation) are inside `load`/`save`, the rest of those is S3. */
  ms: { load: number; decode: number; score: number; deliver: number; save: number; encode: number; total: number };
}

export interface ShardBatchResult {
  /** Kinesis sequence number to retry from (first record not committed); undefined when all were. */
  failedAt: string | undefined;
  /** Why the batch stopped early. */
  reason: string | undefined;
  stats: ShardBatchStats;
}

export interface ShardBatchDeps {
  config: ServiceConfig;
  store: ShardStateStore;
  kinesis: KinesisClient;
  sns: SNSClient | undefined;
  /** Output lines when there is no output stream, and dead letters when there is no dead-letter stream. */
  stdout: Writable;
  stderr: Writable;
  log: ServiceLogger;
  /** Clock for the stats (tests, bench). */
  now?: () => number;
}

/** What scoring made for record i, waiting for delivery. */
interface Scored {
  outputs: (SinkEntry | undefined)[];
  lines: (string | undefined)[];
  deadLetters: ({ letter: DeadLetter; record: SourceRecord } | undefined)[];
  notifications: (Notification | undefined)[];
  anomalies: number;
  bad: number;
}

class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

/** Whether `r` comes after `position` in the shard (sequence number, then KPL sub-sequence). */
export function isAfter(r: Pick<SourceRecord, 'sequenceNumber' | 'subSequence'>, position: ShardCheckpoint | undefined): boolean {
  if (position === undefined) return true;
  const a = BigInt(r.sequenceNumber);
  const b = BigInt(position.sequenceNumber);
  if (a !== b) return a > b;
  return (r.subSequence ?? -1) > (position.subSequence ?? -1);
}

function positionOf(r: SourceRecord): ShardCheckpoint {
  return r.subSequence === undefined ? { sequenceNumber: r.sequenceNumber } : { sequenceNumber: r.sequenceNumber, subSequence: r.subSequence };
}

export class ShardBatchProcessor {
  readonly #deps: ShardBatchDeps;
  readonly #config: ServiceConfig;
  readonly #parser: RecordParser;
  readonly #shape: OutputShape;
  readonly #batch: DetectionBatch;
  readonly #slots: { source: Record<string, unknown>; time: unknown; index: number }[] = [];
  readonly #now: () => number;
  /** One batch at a time per shard, even if the runtime were to overlap invocations. */
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(deps: ShardBatchDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.#now = deps.now ?? (() => performance.now());
    const d = deps.config.detect;
    this.#parser = createRecordParser('ndjson', d.mapping);
    const b = d.mapping.fields.length;
    const k = d.forest.shingleSize ?? 1;
    this.#batch = new DetectionBatch(CHUNK, b, d.explain ? b * k : 0);
    this.#shape = {
      outputFields: d.outputFields,
      adaptive: isAdaptive(d.threshold),
      explainFields: d.explain ? d.mapping.fields : undefined,
      shingleSize: k,
    };
  }

  process(req: ShardBatchRequest): Promise<ShardBatchResult> {
    const key = `${req.stream}/${req.shardId}`;
    const before = this.#locks.get(key) ?? Promise.resolve();
    const run = before.then(
      () => this.#process(req),
      () => this.#process(req),
    );
    this.#locks.set(key, run);
    void run.finally(() => {
      if (this.#locks.get(key) === run) this.#locks.delete(key);
    }).catch(() => undefined);
    return run;
  }

  async #process(req: ShardBatchRequest): Promise<ShardBatchResult> {
    const { store, log } = this.#deps;
    const t0 = this.#now();
    const stats: ShardBatchStats = {
      records: req.records.length,
      skipped: 0,
      scored: 0,
      anomalies: 0,
      deadLetters: 0,
      outputs: 0,
      notifications: 0,
      committed: 0,
      state: { source: 'none', readBytes: 0, writtenBytes: 0 },
      ms: { load: 0, decode: 0, score: 0, deliver: 0, save: 0, encode: 0, total: 0 },
    };
    const finish = (failedAt: string | undefined, reason: string | undefined): ShardBatchResult => {
      stats.ms.total = this.#now() - t0;
      return { failedAt, reason, stats };
    };
    if (req.records.length === 0) return finish(undefined, undefined);

    const state = await store.load(req.stream, req.shardId);
    stats.state.source = state.source;
    stats.state.readBytes = state.source === 'read' ? state.bytes : 0;
    stats.ms.decode = state.decodeMs;
    const t1 = this.#now();
    stats.ms.load = t1 - t0;
    const pending = req.records.filter((r) => isAfter(r, state.position));
    stats.skipped = req.records.length - pending.length;
    if (pending.length === 0) {
      store.release(req.stream, req.shardId, state);
      return finish(undefined, undefined);
    }

    let handedBack = false;
    try {
      const scored = this.#score(state.detector, pending, true)!;
      const t2 = this.#now();
      stats.ms.score = t2 - t1;
      stats.scored = pending.length - scored.bad;
      stats.anomalies = scored.anomalies;
      const delivery = await this.#deliver(req, pending, scored, stats);
      const t3 = this.#now();
      stats.ms.deliver = t3 - t2;

      if (delivery.delivered === pending.length) {
        handedBack = true;
        try {
          const saved = await store.save(req.stream, req.shardId, state, positionOf(pending[pending.length - 1]!));
          stats.state.writtenBytes = saved.bytes;
          stats.ms.encode = saved.encodeMs;
        } catch (error) {
          stats.ms.save = this.#now() - t3;
          return finish(pending[0]!.sequenceNumber, this.#saveFailure(error, req));
        }
        stats.ms.save = this.#now() - t3;
        stats.committed = pending.length;
        return finish(undefined, undefined);
      }

      // Delivery stopped at a chunk boundary: commit the delivered prefix, replayed onto the stored models.
      handedBack = true;
      store.discard(state);
      const reason = `delivery failed: ${errorMessage(delivery.error)}`;
      log.warn('delivery failed; committing what was delivered', { shard: req.shardId, delivered: delivery.delivered, of: pending.length, error: errorMessage(delivery.error) });
      if (delivery.delivered > 0) {
        try {
          const again = await store.load(req.stream, req.shardId);
          if (again.etag !== state.etag) {
            store.discard(again);
            return finish(pending[0]!.sequenceNumber, `${reason}; the stored state changed meanwhile, nothing committed`);
          }
          this.#score(again.detector, pending.slice(0, delivery.delivered), false);
          stats.state.writtenBytes = (await store.save(req.stream, req.shardId, again, positionOf(pending[delivery.delivered - 1]!))).bytes;
          stats.committed = delivery.delivered;
        } catch (error) {
          return finish(pending[0]!.sequenceNumber, `${reason}; ${this.#saveFailure(error, req)}`);
        } finally {
          stats.ms.save = this.#now() - t3;
        }
      }
      return finish(pending[delivery.delivered]!.sequenceNumber, reason);
    } finally {
      if (!handedBack) store.discard(state);
    }
  }

  #saveFailure(error: unknown, req: ShardBatchRequest): string {
    const conflict = error instanceof StateConflictError;
    this.#deps.log.warn(conflict ? 'state conflict; batch will be retried' : 'state save failed; batch will be retried', { shard: req.shardId, error: errorMessage(error) });
    return `${conflict ? 'state conflict' : 'state save failed'}: ${errorMessage(error)}`;
  }

  // --- scoring (the models advance only here) --------------------------------------

  /** Scores records in order; with `collect`, also what each record must deliver. */
  #score(detector: RecordDetector, records: SourceRecord[], collect: boolean): Scored | undefined {
    const n = records.length;
    const scored: Scored | undefined = collect
      ? { outputs: new Array(n), lines: new Array(n), deadLetters: new Array(n), notifications: new Array(n), anomalies: 0, bad: 0 }
      : undefined;
    const batch = this.#batch;
    const b = batch.dimensions;
    const keyed = this.#config.detect.mapping.keyField !== undefined;
    let i = 0;
    while (i < n) {
      batch.count = 0;
      for (; i < n && batch.count < CHUNK; i++) {
        const r = records[i]!;
        const text = decodeText(r.data);
        if (text === undefined) {
          if (scored) this.#bad(scored, i, r, 'invalid UTF-8', 'invalid UTF-8', r.data);
          continue;
        }
        const slot = batch.count;
        const parsed = this.#parser.parse(text, batch.values, slot * b);
        if (!parsed.ok) {
          if (scored) this.#bad(scored, i, r, parsed.reason, parsed.kind, text);
          continue;
        }
        this.#slots[slot] = { source: parsed.source, time: parsed.time, index: i };
        if (keyed) batch.keys[slot] = parsed.key!;
        batch.count = slot + 1;
      }
      if (batch.count === 0) continue;
      detector.run(batch);
      if (scored) this.#collect(scored, records, keyed);
    }
    return scored;
  }

  /** The deliveries of the records just scored in the detection batch. */
  #collect(scored: Scored, records: SourceRecord[], keyed: boolean): void {
    const batch = this.#batch;
    const b = batch.dimensions;
    const cfg = this.#config;
    const emitAll = cfg.emit === 'all';
    const timeField = cfg.detect.mapping.timeField;
    for (let s = 0; s < batch.count; s++) {
      const anomaly = batch.anomaly[s] === 1;
      if (anomaly) scored.anomalies++;
      if (!anomaly && !emitAll) continue;
      const { source, time, index } = this.#slots[s]!;
      const r = records[index]!;
      const id = recordId(r);
      const score = batch.score[s]!;
      const key = keyed ? batch.keys[s] : undefined;
      let json: string;
      try {
        json = JSON.stringify(
          outputRecord(this.#shape, source, {
            score,
            anomaly,
            grade: batch.grade[s]!,
            threshold: batch.threshold[s]!,
            explanation: this.#shape.explainFields !== undefined ? explanationAt(this.#shape, batch.high!, batch.low!, s) : undefined,
            recordId: id,
          }),
        );
      } catch (error) {
        // Learned already (as detect would), but its output cannot be written: a dead letter.
        this.#bad(scored, index, r, `output record cannot be serialised: ${errorMessage(error)}`, 'unserialisable output', decodeText(r.data) ?? r.data);
        continue;
      }
      if (cfg.output !== undefined) {
        const entry: SinkEntry = { data: Buffer.from(json, 'utf8'), partitionKey: outputPartitionKey(cfg.outputPartitionKey, id, key, r, source) };
        if (entry.data.byteLength + Buffer.byteLength(entry.partitionKey, 'utf8') > MAX_RECORD_BYTES) {
          this.#bad(scored, index, r, `output record is ${entry.data.byteLength} bytes; Kinesis takes at most ${MAX_RECORD_BYTES}`, 'output too large', decodeText(r.data) ?? r.data);
          continue;
        }
        scored.outputs[index] = entry;
      } else {
        scored.lines[index] = `${json}\n`;
      }
      if (anomaly && cfg.snsTopicArn !== undefined) {
        const when = timeField !== undefined ? time : (r.arrivalTime?.toISOString() ?? id);
        const attributes: Record<string, string | number> = { Score: score, AnomalyId: id };
        if (key !== undefined && key !== '') attributes['Key'] = key;
        scored.notifications[index] = { message: formatNotification(when, batch.values, s * b, b, score), subject: cfg.sns.subject, attributes, score };
      }
    }
  }

  #bad(scored: Scored, i: number, r: SourceRecord, reason: string, kind: string, input: string | Uint8Array): void {
    scored.bad++;
    scored.deadLetters[i] = { letter: { line: 0, reason, kind, input, source: recordId(r) }, record: r };
  }

  // --- delivery (in record order, chunk by chunk) -------------------------------------

  async #deliver(
    req: ShardBatchRequest,
    records: SourceRecord[],
    scored: Scored,
    stats: ShardBatchStats,
  ): Promise<{ delivered: number; error?: unknown }> {
    const cfg = this.#config;
    const { kinesis, sns, log } = this.#deps;
    const remaining = req.deadline === undefined ? undefined : Math.max(1, req.deadline - Date.now());
    const signal = remaining === undefined ? undefined : AbortSignal.timeout(remaining);
    const sink = cfg.output !== undefined ? new KinesisSink({ client: kinesis, ...cfg.output, logger: log, ...(signal ? { signal } : {}) }) : undefined;
    const dlq = cfg.deadLetterStream !== undefined ? new KinesisSink({ client: kinesis, ...cfg.deadLetterStream, logger: log, ...(signal ? { signal } : {}) }) : undefined;
    const n = records.length;
    const notifier =
      sns !== undefined && cfg.snsTopicArn !== undefined
        ? new SnsNotifier({ client: sns, topicArn: cfg.snsTopicArn, ratePerWindow: cfg.sns.ratePerWindow, windowMs: cfg.sns.windowMs, maxQueue: n + 1, logger: log })
        : undefined;
    const flushMs = remaining ?? 60_000;
    let delivered = 0;
    try {
      for (let a = 0; a < n; a += DELIVERY_RECORDS) {
        const end = Math.min(n, a + DELIVERY_RECORDS);
        const outputs: SinkEntry[] = [];
        let lines = '';
        let lineCount = 0;
        const letters: { letter: DeadLetter; record: SourceRecord }[] = [];
        const notes: Notification[] = [];
        for (let i = a; i < end; i++) {
          const o = scored.outputs[i];
          if (o !== undefined) outputs.push(o);
          const l = scored.lines[i];
          if (l !== undefined) {
            lines += l;
            lineCount++;
          }
          const d = scored.deadLetters[i];
          if (d !== undefined) letters.push(d);
          const m = scored.notifications[i];
          if (m !== undefined) notes.push(m);
        }
        if (outputs.length > 0) await sink!.put(outputs);
        if (lines !== '') await writeAll(this.#deps.stdout, lines);
        if (letters.length > 0) {
          if (dlq !== undefined) await dlq.put(letters.map(({ letter, record }) => deadLetterEntry(letter, record)));
          else {
            // No dead-letter stream: the function's log is the dead-letter destination.
            const writer = new DeadLetterWriter(this.#deps.stderr, { endOnClose: false });
            for (const { letter } of letters) writer.write(letter);
            await writer.close();
          }
        }
        if (notes.length > 0 && notifier !== undefined) {
          const before = notifier.stats();
          let suppressed = 0;
          for (const note of notes) if (notifier.notify(note) === 'suppressed') suppressed++;
          if (!(await notifier.flush(flushMs))) throw new DeliveryError(`SNS did not accept ${notes.length - suppressed} notifications in time`);
          const after = notifier.stats();
          const lost = after.failed - before.failed + (after.dropped - before.dropped);
          if (lost > 0) throw new DeliveryError(`SNS rejected ${lost} of ${notes.length} notifications`);
          stats.notifications += after.published - before.published;
        }
        stats.outputs += outputs.length + lineCount;
        stats.deadLetters += letters.length;
        delivered = end;
      }
      return { delivered };
    } catch (error) {
      return { delivered, error };
    } finally {
      // The summary of suppressed notifications (over RCF_SNS_RATE in this batch) goes out last.
      await notifier?.close(Math.min(flushMs, 10_000));
    }
  }
}

function writeAll(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => stream.write(text, (e) => (e ? reject(e) : resolve())));
}
