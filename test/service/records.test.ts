import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../src/aws/kinesis-source.js';
import { decodeText, outputPartitionKey, outputRecord, recordId, type OutputShape } from '../../src/pipeline/records.js';

const record = (extra: Partial<SourceRecord> = {}): SourceRecord => ({
  shardId: 'shardId-000000000003',
  sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
  partitionKey: 'pk-1',
  data: new Uint8Array(0),
  ...extra,
});

const shape = (extra: Partial<OutputShape> = {}): OutputShape => ({ outputFields: undefined, adaptive: false, explainFields: undefined, shingleSize: 1, ...extra });

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
    expect(outputRecord(shape(), { time: 5, value: 44.1, score: 'input loses' }, scored)).toEqual({
      time: 5,
      value: 44.1,
      score: 3.5,
      anomaly: true,
      recordId: 'shardId-000000000000:1',
    });
    expect(outputRecord(shape({ adaptive: true }), { value: 1 }, scored)).toEqual({ value: 1, score: 3.5, anomaly: true, grade: 0.7, threshold: 2.1, recordId: 'shardId-000000000000:1' });
    const flink = outputRecord(shape({ outputFields: ['time', 'value', 'score', 'absent'] }), { time: 5, value: 44.1, extra: 1 }, scored);
    expect(JSON.stringify(flink)).toBe('{"time":5,"value":44.1,"score":3.5}');
  });
});
