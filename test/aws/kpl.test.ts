import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { aggregate, deaggregate, isAggregated, KplFormatError } from '../../src/aws/kpl.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Builds the aggregation format byte by byte (independent of src/aws/kpl.ts's encoder). */
function handEncoded(): Uint8Array {
  const pk = [...enc.encode('partition_key')];
  const data = [...enc.encode('data')];
  // AggregatedRecord: field 1 (partition_key_table) = "partition_key"; field 3 (records) = Record{1: 0, 3: "data"}
  const record = [0x08, 0x00, 0x1a, data.length, ...data];
  const protobuf = Uint8Array.from([0x0a, pk.length, ...pk, 0x1a, record.length, ...record]);
  const md5 = createHash('md5').update(protobuf).digest();
  return Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...protobuf, ...md5]);
}

describe('KPL de-aggregation', () => {
  it('decodes a hand-built aggregated record', () => {
    const bytes = handEncoded();
    expect(isAggregated(bytes)).toBe(true);
    const users = deaggregate(bytes);
    expect(users).toHaveLength(1);
    expect(users[0]!.partitionKey).toBe('partition_key');
    expect(dec.decode(users[0]!.data)).toBe('data');
    expect(users[0]!.explicitHashKey).toBeUndefined();
    // The same user record through our encoder gives the same bytes.
    expect(Buffer.from(aggregate([{ partitionKey: 'partition_key', data: enc.encode('data') }]))).toEqual(Buffer.from(bytes));
  });

  it('round-trips many records with shared keys, explicit hash keys, binary and empty data', () => {
    const records = Array.from({ length: 300 }, (_, i) => ({
      partitionKey: `pk-${i % 7}-ü`,
      data: i === 5 ? new Uint8Array(0) : Uint8Array.from({ length: i + 1 }, (_, j) => (i * 31 + j) & 0xff),
      ...(i % 10 === 0 ? { explicitHashKey: String(2n ** 127n + BigInt(i)) } : {}),
    }));
    const out = deaggregate(aggregate(records));
    expect(out).toHaveLength(records.length);
    out.forEach((u, i) => {
      expect(u.partitionKey).toBe(records[i]!.partitionKey);
      expect(Buffer.from(u.data)).toEqual(Buffer.from(records[i]!.data));
      expect(u.explicitHashKey).toBe(records[i]!.explicitHashKey);
    });
  });

  it('skips unknown protobuf fields (tags)', () => {
    const pk = [...enc.encode('k')];
    const tag = [0x0a, 0x01, 0x74]; // Tag{key: "t"}
    const record = [0x08, 0x00, 0x1a, 0x01, 0x41, 0x22, tag.length, ...tag];
    const protobuf = Uint8Array.from([0x0a, pk.length, ...pk, 0x1a, record.length, ...record]);
    const md5 = createHash('md5').update(protobuf).digest();
    const users = deaggregate(Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...protobuf, ...md5]));
    expect(dec.decode(users[0]!.data)).toBe('A');
  });

  it('rejects a bad digest, truncated protobuf and out-of-range key indexes', () => {
    const good = handEncoded();
    const badDigest = good.slice();
    badDigest[badDigest.length - 1]! ^= 1;
    expect(() => deaggregate(badDigest)).toThrow(/MD5/);

    const protobuf = Uint8Array.from([0x1a, 0x05, 0x08, 0x03, 0x1a, 0x01, 0x41]); // partition key index 3, empty table
    const md5 = createHash('md5').update(protobuf).digest();
    expect(() => deaggregate(Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...protobuf, ...md5]))).toThrow(/out of range/);

    const truncated = Uint8Array.from([0x0a, 0x09, 0x41]);
    const md5t = createHash('md5').update(truncated).digest();
    expect(() => deaggregate(Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...truncated, ...md5t]))).toThrow(KplFormatError);

    expect(isAggregated(enc.encode('{"plain":"json record"}'))).toBe(false);
  });
});
