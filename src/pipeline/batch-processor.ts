/**
 * The record stage of every pipeline: the records of one partition's batch are decoded,
 * parsed, scored by that partition's models, formatted and turned into what the sinks
 * deliver (output records, dead letters, notifications). Synchronous: the models advance
 * only inside process(), so a caller can take positions and a model snapshot at an
 * instant when they describe the same records.
 *
 * Failure containment: nothing one record contains stops the pipeline. Every per-record
 * step (decode, parse, validate, format, serialise, size limits) either succeeds or sets
 * that record aside as a dead letter whose reason is counted by kind.
 *
 * Two output forms: 'records' (one OutputItem per output record, with its record id: Kinesis,
 * `run` to stdout) and 'lines' (one NDJSON buffer per batch, no record ids: `detect` to a file
 * or stdout), where an NDJSON input's own text is spliced rather than re-serialised.
 */
import { parseTimestamp } from '../detect/timestamp.js';
import { DetectionBatch } from '../detect/detector.js';
import type { DetectionSettings } from '../detect/settings.js';
import { NdjsonRecordParser, createRecordParser, type RecordParser } from '../io/record-parser.js';
import { ByteTextBuilder, formatNotification } from '../io/output.js';
import type { DeadLetterItem, OutputItem, PipelineNotification, PipelineObserver, PipelineRecord, ScoredBatch } from './contracts.js';
import { FormatError, RecordFormatter, guardFormat } from './formatter.js';
import { decodeText, outputPartitionKey, recordId, type PartitionKeySpec } from './records.js';
import type { ScopedModels } from './scoped-models.js';

/** Records scored per detector call. */
export const CHUNK_RECORDS = 2048;
/** Kinesis's record limit: data plus partition key. */
export const MAX_KINESIS_RECORD_BYTES = 1024 * 1024;

export interface BatchProcessorOptions {
  settings: DetectionSettings;
  models: ScopedModels;
  /** Which scored records become output records. */
  emit: 'anomalies' | 'all';
  /** Output partition keys (a Kinesis output); undefined: none (stdout, files). */
  partitionKey?: PartitionKeySpec | undefined;
  /** Largest output record (data plus partition key). Default: Kinesis's 1 MiB. */
  maxOutputBytes?: number;
  /** Build a notification per anomaly, with this subject. */
  notifications?: { subject?: string } | undefined;
  observer?: PipelineObserver | undefined;
  /** How a record's text is parsed; default: NDJSON with the settings' mapping (a CSV input passes its header's parser). */
  parser?: RecordParser | undefined;
  /** 'records' (the default) or 'lines' (see the module comment). */
  output?: 'records' | 'lines';
}

/** Lone surrogates made valid (U+FFFD): AWS SDKs reject ill-formed strings (URIError). */
function wellFormed(text: string): string {
  return (text as unknown as { toWellFormed(): string }).toWellFormed();
}

export class BatchProcessor {
  readonly #settings: DetectionSettings;
  readonly #models: ScopedModels;
  readonly #emitAll: boolean;
  readonly #partitionKey: PartitionKeySpec | undefined;
  readonly #maxOutputBytes: number;
  readonly #notify: { subject?: string } | undefined;
  readonly #observer: PipelineObserver | undefined;
  readonly #parser: RecordParser;
  readonly #formatter: RecordFormatter;
  /** 'lines' output: the batch's NDJSON lines; undefined for 'records'. */
  readonly #lines: ByteTextBuilder | undefined;
  #lineCount = 0;
  /** 'lines' output of NDJSON input: each record's own text, to splice the results into. */
  readonly #texts: (string | undefined)[] | undefined;
  readonly #batch: DetectionBatch;
  readonly #keyed: boolean;
  readonly #sources = new Array<Record<string, unknown>>(CHUNK_RECORDS);
  readonly #times = new Array<unknown>(CHUNK_RECORDS);
  readonly #records = new Array<PipelineRecord>(CHUNK_RECORDS);
  readonly #recordIdAt = (i: number): string => recordId(this.#records[i]!);
  /** Dead letters by kind, since the start. */
  readonly badByKind = new Map<string, number>();
  badRecords = 0;

  constructor(options: BatchProcessorOptions) {
    const s = options.settings;
    this.#settings = s;
    this.#models = options.models;
    this.#emitAll = options.emit === 'all';
    this.#partitionKey = options.partitionKey;
    this.#maxOutputBytes = options.maxOutputBytes ?? MAX_KINESIS_RECORD_BYTES;
    this.#notify = options.notifications;
    this.#observer = options.observer;
    this.#parser = options.parser ?? createRecordParser('ndjson', s.mapping);
    const lines = options.output === 'lines';
    this.#formatter = new RecordFormatter(s, { recordIds: !lines });
    this.#lines = lines ? new ByteTextBuilder() : undefined;
    this.#texts = lines && this.#parser instanceof NdjsonRecordParser ? new Array<string | undefined>(CHUNK_RECORDS) : undefined;
    const b = s.mapping.fields.length;
    this.#batch = new DetectionBatch(CHUNK_RECORDS, b, s.explain ? b * (s.forest.shingleSize ?? 1) : 0);
    this.#keyed = s.mapping.keyField !== undefined;
  }

  get models(): ScopedModels {
    return this.#models;
  }

  /** Creates `shardId`'s models if needed; await it before process() for that shard. */
  prepare(shardId: string): Promise<void> {
    return this.#models.prepare(shardId);
  }

  /** Scores the records (all of shard `shardId`, in order) and builds their deliveries. */
  process(shardId: string, records: readonly PipelineRecord[]): ScoredBatch {
    const out: ScoredBatch = { shardId, records: records.length, scored: 0, anomalies: 0, outputs: [], deadLetters: [], notifications: [] };
    let i = 0;
    while (i < records.length) i = this.#chunk(shardId, records, i, out);
    this.#takeLines(out);
    return out;
  }

  /**
   * process() with the models on worker threads (ScopedModels with a pool): the same steps,
   * awaiting each detector call. One call at a time per processor (its buffers are reused).
   */
  async processRemote(shardId: string, records: readonly PipelineRecord[]): Promise<ScoredBatch> {
    const out: ScoredBatch = { shardId, records: records.length, scored: 0, anomalies: 0, outputs: [], deadLetters: [], notifications: [] };
    let i = 0;
    while (i < records.length) {
      i = this.#fill(records, i, out);
      if (this.#batch.count === 0) continue;
      const started = performance.now();
      await this.#models.runRemote(shardId, this.#batch);
      this.#finish(shardId, performance.now() - started, out);
    }
    this.#takeLines(out);
    return out;
  }

  #takeLines(out: ScoredBatch): void {
    if (this.#lines === undefined) return;
    out.lines = { data: this.#lines.take(), count: this.#lineCount };
    this.#lineCount = 0;
  }

  #chunk(shardId: string, records: readonly PipelineRecord[], from: number, out: ScoredBatch): number {
    const i = this.#fill(records, from, out);
    if (this.#batch.count === 0) return i;
    const started = performance.now();
    this.#models.run(shardId, this.#batch);
    this.#finish(shardId, performance.now() - started, out);
    return i;
  }

  /** Parses records from `from` into the detection batch (up to CHUNK_RECORDS); returns where it stopped. */
  #fill(records: readonly PipelineRecord[], from: number, out: ScoredBatch): number {
    const batch = this.#batch;
    const b = batch.dimensions;
    batch.count = 0;
    let i = from;
    for (; i < records.length && batch.count < CHUNK_RECORDS; i++) {
      const r = records[i]!;
      if (r.rejected !== undefined) {
        this.#bad(out, r, r.rejected.reason, r.rejected.kind, undefined);
        continue;
      }
      const text = r.text ?? decodeText(r.data);
      if (text === undefined) {
        if (r.deaggregationError !== undefined) this.#bad(out, r, `corrupt KPL aggregate: ${r.deaggregationError}`, 'corrupt KPL aggregate', r.data);
        else this.#bad(out, r, 'invalid UTF-8', 'invalid UTF-8', r.data);
        continue;
      }
      const slot = batch.count;
      let parsed: ReturnType<RecordParser['parse']>;
      try {
        parsed = this.#parser.parse(text, batch.values, slot * b);
      } catch (error) {
        this.#bad(out, r, `cannot be parsed: ${(error as Error).message}`, 'unparseable', text);
        continue;
      }
      if (!parsed.ok) {
        this.#bad(out, r, parsed.reason, parsed.kind, text);
        continue;
      }
      this.#sources[slot] = parsed.source;
      this.#times[slot] = parsed.time;
      batch.time[slot] = parseTimestamp(parsed.time);
      this.#records[slot] = r;
      if (this.#texts !== undefined) this.#texts[slot] = text;
      if (this.#keyed) batch.keys[slot] = parsed.key!;
      batch.count = slot + 1;
    }
    return i;
  }

  /** Builds the deliveries of the scored detection batch. */
  #finish(shardId: string, latencyMs: number, out: ScoredBatch): void {
    const batch = this.#batch;
    const n = batch.count;
    out.scored += n;
    let anomalies = 0;
    for (let s = 0; s < n; s++) {
      const anomaly = batch.anomaly[s] === 1;
      if (anomaly) anomalies++;
      if (!anomaly && !this.#emitAll) continue;
      const r = this.#records[s]!;
      try {
        if (this.#lines !== undefined) this.#appendLine(r, s, anomaly, out);
        else this.#deliveriesOf(r, s, anomaly, out);
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        this.#bad(out, r, error.message, error.kind, r.text ?? decodeText(r.data) ?? r.data, { anomaly });
      }
    }
    out.anomalies += anomalies;
    this.#observer?.batchScored?.({ shardId, batch, anomalies, latencyMs, recordId: this.#recordIdAt });
  }

  /** Output record and notification of scored record s; throws FormatError, adding nothing, when either cannot be made. */
  #deliveriesOf(r: PipelineRecord, s: number, anomaly: boolean, out: ScoredBatch): void {
    const batch = this.#batch;
    const source = this.#sources[s]!;
    const id = recordId(r);
    const data = Buffer.from(this.#formatter.json(source, batch, s, id), 'utf8');
    let partitionKey = '';
    if (this.#partitionKey !== undefined) {
      const key = this.#keyed ? batch.keys[s] : undefined;
      partitionKey = wellFormed(outputPartitionKey(this.#partitionKey, id, key, r, source));
      const size = data.byteLength + Buffer.byteLength(partitionKey, 'utf8');
      if (size > this.#maxOutputBytes) {
        throw new FormatError(`output record is ${size} bytes with its partition key; Kinesis takes at most ${this.#maxOutputBytes}`, 'output too large');
      }
    }
    const notification = anomaly ? this.#notification(r, s, id) : undefined;
    const item: OutputItem = { data, partitionKey, recordId: id };
    out.outputs.push(item);
    if (notification !== undefined) out.notifications.push(notification);
  }

  /** 'lines' output: record s's line (and notification); throws FormatError, adding nothing, when either cannot be made. */
  #appendLine(r: PipelineRecord, s: number, anomaly: boolean, out: ScoredBatch): void {
    const notification = anomaly ? this.#notification(r, s, undefined) : undefined;
    this.#formatter.appendLine(this.#lines!, this.#texts?.[s], this.#sources[s]!, this.#batch, s);
    this.#lineCount++;
    if (notification !== undefined) out.notifications.push(notification);
  }

  /** The notification of anomaly s, when notifications are asked for; throws FormatError when it cannot be made. */
  #notification(r: PipelineRecord, s: number, id: string | undefined): PipelineNotification | undefined {
    if (this.#notify === undefined) return undefined;
    const batch = this.#batch;
    const b = batch.dimensions;
    const timeField = this.#settings.mapping.timeField;
    id ??= recordId(r);
    // Without a time field: the line number (files, stdin), else the arrival time, else the record id.
    const time = timeField !== undefined ? this.#times[s] : (r.line ?? r.arrivalTime?.toISOString() ?? id);
    const score = batch.score[s]!;
    const message = wellFormed(guardFormat('notification', () => formatNotification(time, batch.values, s * b, b, score)));
    const attributes: Record<string, string | number> = { Score: score, AnomalyId: id };
    const key = this.#keyed ? batch.keys[s] : undefined;
    if (key !== undefined && key !== '') attributes['Key'] = wellFormed(key);
    const notification: PipelineNotification = { message, attributes, score };
    if (this.#notify.subject !== undefined) notification.subject = this.#notify.subject;
    return notification;
  }

  #bad(out: ScoredBatch, r: PipelineRecord, reason: string, kind: string, input: string | Uint8Array | undefined, scored?: { anomaly: boolean }): void {
    this.badRecords++;
    this.badByKind.set(kind, (this.badByKind.get(kind) ?? 0) + 1);
    const id = recordId(r);
    // A line input's records are located by line number; others by record id.
    const letter: DeadLetterItem['letter'] = r.line !== undefined ? { line: r.line, reason, kind, input } : { line: 0, reason, kind, input, source: id };
    const item: DeadLetterItem = scored !== undefined ? { letter, record: r, scored } : { letter, record: r };
    out.deadLetters.push(item);
    this.#observer?.deadLettered?.({ shardId: r.shardId, kind, reason, recordId: id });
  }
}
