/**
 * Per-record pieces of the service: the stable record id, decoding Kinesis
 * data into text, and the JSON of an output record.
 */
import type { SourceRecord } from '../aws/kinesis-source.js';
import { explain, type Explanation } from '../detect/explanation.js';
import type { PartitionKeySpec } from '../service/settings.js';

/**
 * `shardId:sequenceNumber[:subSequence]`: identifies an input record (and so
 * its anomaly) across restarts and replays, because Kinesis never changes a
 * record's shard and sequence number.
 */
export function recordId(r: Pick<SourceRecord, 'shardId' | 'sequenceNumber' | 'subSequence'>): string {
  return r.subSequence === undefined ? `${r.shardId}:${r.sequenceNumber}` : `${r.shardId}:${r.sequenceNumber}:${r.subSequence}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The record's text, or undefined when it is not valid UTF-8. */
export function decodeText(data: Uint8Array): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

/** Kinesis partition keys are 1..256 Unicode characters. */
const MAX_PARTITION_KEY_CHARS = 256;

function fitPartitionKey(key: string | undefined, fallback: string): string {
  if (key === undefined || key.length === 0) return fallback;
  if (key.length <= MAX_PARTITION_KEY_CHARS) return key;
  const chars = [...key];
  return chars.length <= MAX_PARTITION_KEY_CHARS ? key : chars.slice(0, MAX_PARTITION_KEY_CHARS).join('');
}

export function outputPartitionKey(spec: PartitionKeySpec, id: string, key: string | undefined, input: SourceRecord, source: Record<string, unknown>): string {
  switch (spec.kind) {
    case 'key':
      return fitPartitionKey(key, id);
    case 'id':
      return id;
    case 'input':
      return fitPartitionKey(input.partitionKey, id);
    case 'field': {
      const v = Object.hasOwn(source, spec.name) ? source[spec.name] : undefined;
      return fitPartitionKey(typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined, id);
    }
  }
}

/** One scored record's results, as the output record carries them. */
export interface ScoredFields {
  score: number;
  anomaly: boolean;
  /** Only for adaptive thresholds. */
  grade?: number;
  threshold?: number;
  explanation?: Explanation;
  recordId: string;
}

export interface OutputShape {
  /** Only these fields, in order; undefined: every input field plus the results. */
  outputFields: readonly string[] | undefined;
  adaptive: boolean;
  /** Explanations requested: base field names and shingle size. */
  explainFields: readonly string[] | undefined;
  shingleSize: number;
}

/** Explanation of record i from attribution columns (length per record = fields × shingle). */
export function explanationAt(shape: OutputShape, high: Float64Array, low: Float64Array, i: number): Explanation {
  const fields = shape.explainFields!;
  return explain(fields, shape.shingleSize, high, low, i * fields.length * shape.shingleSize);
}

/**
 * The output record: the input's fields followed by the results (results win
 * over input fields of the same name), or just `outputFields`.
 */
export function outputRecord(shape: OutputShape, source: Record<string, unknown>, r: ScoredFields): Record<string, unknown> {
  const results: Record<string, unknown> = { score: r.score, anomaly: r.anomaly };
  if (shape.adaptive) {
    results['grade'] = r.grade;
    results['threshold'] = r.threshold;
  }
  if (r.explanation !== undefined) results['explanation'] = r.explanation;
  results['recordId'] = r.recordId;
  if (shape.outputFields === undefined) return Object.assign({ ...source }, results);
  const out = Object.create(null) as Record<string, unknown>;
  for (const name of shape.outputFields) {
    const value = Object.hasOwn(results, name) ? results[name] : Object.hasOwn(source, name) ? source[name] : undefined;
    // Absent fields are left out rather than invented.
    if (value !== undefined) out[name] = value;
  }
  return out;
}
