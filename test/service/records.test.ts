import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../src/aws/kinesis-source.js';
import { decodeText, outputPartitionKey, recordId } from '../../src/pipeline/records.js';
import { RecordFormatter } from '../../src/pipeline/formatter.js';
import { DetectionBatch } from '../../src/detect/detector.js';
import type { DetectionSettings } from '../../src/detect/settings.js';

const record = (extra: Partial<SourceRecord> = {}): SourceRecord => ({
  shardId: 'shardId-000000000003',
  sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
  partitionKey: 'pk-1',
  data: new Uint8Array(0),
  ...extra,
});

/** The formatter of the service (record ids on), adaptive or not, maybe with chosen fields. */
const formatter = (extra: { adaptive?: boolean; outputFields?: string[] } = {}): RecordFormatter => {
  const settings: DetectionSettings = {
    mapping: { fields: ['value'] },
    forest: { dimensions: 1 },
    threshold: extra.adaptive === true ? { kind: 'trcf' } : { kind: 'fixed', value: 3 },
    maxKeys: 1,
    explain: false,
    outputFields: extra.outputFields,
  } as DetectionSettings;
  return new RecordFormatter(settings, { recordIds: true });
};
/** One scored record as result columns. */
const results = (r: { score: number; anomaly: boolean; grade: number; threshold: number }): DetectionBatch => {
  const b = new DetectionBatch(1, 1);
  b.count = 1;
  b.score[0] = r.score;
  b.anomaly[0] = r.anomaly ? 1 : 0;
  b.grade[0] = r.grade;
  b.threshold[0] = r.threshold;
  return b;
};
const outputRecord = (f: RecordFormatter, source: Record<string, unknown>, scored: { score: number; anomaly: boolean; grade: number; threshold: number; recordId: string }): Record<string, unknown> =>
  f.object(source, results(scored), 0, scored.recordId);

describe('service records', () => {
  it('identifies a record by shard, sequence number and KPL sub-sequence', () => {
    expect(recordId(record())).toBe('shardId-000000000003:49590338271490256608559692538361571095921575989136588898');
    expect(recordId(record({ subSequence: 0 }))).toBe('shardId-000000000003:49590338271490256608559692538361571095921575989136588898:0');
  });

  it('decodes UTF-8 strictly', () => {
    expect(decodeText(Buffer.from('{"value":"30 °C"}'))).toBe('{"value":"30 °C"}');
    expect(decodeText(new Uint8Array([0x7b, 0xc3]))).toBeUndefined();
  });

  it('chooses the output partition key: key, id, input or a field, falling back to the id', () => {
    const id = 'shardId-000000000003:42';
    const src = { sensor: 's-9', n: 7, empty: '' };
    expect(outputPartitionKey({ kind: 'key' }, id, 'sensor-4', record(), src)).toBe('sensor-4');
    expect(outputPartitionKey({ kind: 'key' }, id, undefined, record(), src)).toBe(id);
    expect(outputPartitionKey({ kind: 'key' }, id, '', record(), src)).toBe(id);
    expect(outputPartitionKey({ kind: 'id' }, id, 'sensor-4', record(), src)).toBe(id);
    expect(outputPartitionKey({ kind: 'input' }, id, undefined, record(), src)).toBe('pk-1');
    expect(outputPartitionKey({ kind: 'field', name: 'sensor' }, id, undefined, record(), src)).toBe('s-9');
    expect(outputPartitionKey({ kind: 'field', name: 'n' }, id, undefined, record(), src)).toBe('7');
    expect(outputPartitionKey({ kind: 'field', name: 'empty' }, id, undefined, record(), src)).toBe(id);
    expect(outputPartitionKey({ kind: 'field', name: 'absent' }, id, undefined, record(), src)).toBe(id);
    // Kinesis takes at most 256 characters (not UTF-16 units).
    const long = '🌡'.repeat(300);
    const cut = outputPartitionKey({ kind: 'key' }, id, long, record(), src);
    expect([...cut]).toHaveLength(256);
    expect(long.startsWith(cut)).toBe(true);
  });

  it('builds output records: input fields plus results, or only the chosen fields', () => {
    const scored = { score: 3.5, anomaly: true, grade: 0.7, threshold: 2.1, recordId: 'shardId-000000000000:1' };
    expect(outputRecord(formatter(), { time: 5, value: 44.1, score: 'input loses' }, scored)).toEqual({
      time: 5,
      value: 44.1,
      score: 3.5,
      anomaly: true,
      recordId: 'shardId-000000000000:1',
    });
    expect(outputRecord(formatter({ adaptive: true }), { value: 1 }, scored)).toEqual({ value: 1, score: 3.5, anomaly: true, grade: 0.7, threshold: 2.1, recordId: 'shardId-000000000000:1' });
    const flink = outputRecord(formatter({ outputFields: ['time', 'value', 'score', 'absent'] }), { time: 5, value: 44.1, extra: 1 }, scored);
    expect(JSON.stringify(flink)).toBe('{"time":5,"value":44.1,"score":3.5}');
  });
});
