/**
 * Per-record pieces of the pipeline: the stable record id, decoding Kinesis
 * data into text, and the output partition key (the output JSON: formatter.ts).
 */
import type { PipelineRecord as SourceRecord } from './contracts.js';

/** What the output record's partition key is. */
export type PartitionKeySpec =
  /** The record's --key-field value, else its record id (the default). */
  | { kind: 'key' }
  /** The record id `shardId:sequenceNumber[:subSequence]`. */
  | { kind: 'id' }
  /** The input record's own partition key. */
  | { kind: 'input' }
  /** The value of an input field (the record id when absent). */
  | { kind: 'field'; name: string };

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

