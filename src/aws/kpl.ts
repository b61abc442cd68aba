/**
 * KPL record aggregation format (as documented by the Kinesis Producer Library):
 *
 *   magic 0xF3 0x89 0x9A 0xC2 | protobuf AggregatedRecord | MD5 of the protobuf (16 bytes)
 *
 *   message AggregatedRecord { repeated string partition_key_table = 1;
 *                              repeated string explicit_hash_key_table = 2;
 *                              repeated Record records = 3; }
 *   message Record { required uint64 partition_key_index = 1;
 *                    optional uint64 explicit_hash_key_index = 2;
 *                    required bytes data = 3;  repeated Tag tags = 4; }
 *
 * A small decoder of our own instead of the `aws-kinesis-agg` package: that
 * package is CommonJS with callback/base64 APIs, types that import the v2
 * `aws-sdk`, and pins runtime dependencies (async, protobufjs with a
 * postinstall script) for what is ~100 lines of protobuf reading.
 */
import { createHash } from 'node:crypto';
import { RcfStreamError } from '../util/errors.js';

export const KPL_MAGIC = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2);
const MD5_BYTES = 16;

export interface UserRecord {
  partitionKey: string;
  explicitHashKey?: string;
  data: Uint8Array;
}

export class KplFormatError extends RcfStreamError {
  override readonly name = 'KplFormatError';
  readonly code = 'KPL_FORMAT';
}

/** True if `data` starts with the KPL magic and is long enough to hold a digest. */
export function isAggregated(data: Uint8Array): boolean {
  if (data.byteLength < KPL_MAGIC.length + MD5_BYTES) return false;
  for (let i = 0; i < KPL_MAGIC.length; i++) if (data[i] !== KPL_MAGIC[i]) return false;
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Protobuf wire reader over a byte range; throws KplFormatError on malformed input. */
class Reader {
  pos: number;
  constructor(
    private readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new KplFormatError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw new KplFormatError('varint too large');
        return result;
      }
      mul *= 128;
    }
    throw new KplFormatError('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.end) throw new KplFormatError('length-delimited field runs past its message');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    try {
      return utf8.decode(this.bytes());
    } catch (e) {
      if (e instanceof KplFormatError) throw e;
      throw new KplFormatError('string field is not valid UTF-8');
    }
  }

  /** Skips a field of the given wire type (unknown fields are legal protobuf). */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new KplFormatError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new KplFormatError('truncated fixed-size field');
    this.pos += n;
  }
}

interface RawRecord {
  pkIndex?: number;
  ehkIndex?: number;
  data?: Uint8Array;
}

function readRecord(msg: Uint8Array): RawRecord {
  const r = new Reader(msg, 0, msg.byteLength);
  const out: RawRecord = {};
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 0) out.pkIndex = r.varint();
    else if (field === 2 && wt === 0) out.ehkIndex = r.varint();
    else if (field === 3 && wt === 2) out.data = r.bytes();
    else r.skip(wt);
  }
  return out;
}

/**
 * Splits a KPL-aggregated Kinesis record into its user records, in order.
 * Throws KplFormatError if the digest does not match or the protobuf is
 * malformed; callers then treat the record as a plain one, as the KCL does.
 */
export function deaggregate(data: Uint8Array): UserRecord[] {
  if (!isAggregated(data)) throw new KplFormatError('not a KPL aggregated record (magic missing)');
  const start = KPL_MAGIC.length;
  const end = data.byteLength - MD5_BYTES;
  const digest = createHash('md5').update(data.subarray(start, end)).digest();
  for (let i = 0; i < MD5_BYTES; i++) {
    if (digest[i] !== data[end + i]) throw new KplFormatError('MD5 digest mismatch');
  }
  const pkTable: string[] = [];
  const ehkTable: string[] = [];
  const raws: RawRecord[] = [];
  const r = new Reader(data, start, end);
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 2) pkTable.push(r.string());
    else if (field === 2 && wt === 2) ehkTable.push(r.string());
    else if (field === 3 && wt === 2) raws.push(readRecord(r.bytes()));
    else r.skip(wt);
  }
  return raws.map((raw, i) => {
    if (raw.pkIndex === undefined || raw.data === undefined) throw new KplFormatError(`user record ${i} lacks a required field`);
    const partitionKey = pkTable[raw.pkIndex];
    if (partitionKey === undefined) throw new KplFormatError(`user record ${i} has partition key index ${raw.pkIndex} out of range`);
    const rec: UserRecord = { partitionKey, data: raw.data };
    if (raw.ehkIndex !== undefined) {
      const ehk = ehkTable[raw.ehkIndex];
      if (ehk === undefined) throw new KplFormatError(`user record ${i} has explicit hash key index ${raw.ehkIndex} out of range`);
      rec.explicitHashKey = ehk;
    }
    return rec;
  });
}

// --- encoder: for producers that want to aggregate, and for tests ----------

function varintBytes(n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot encode ${n} as a varint`);
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array[] {
  return [Uint8Array.from([...varintBytes(field * 8 + 2), ...varintBytes(payload.byteLength)]), payload];
}

const utf8enc = new TextEncoder();

/**
 * Encodes user records as one KPL-aggregated record. Partition and explicit
 * hash keys are deduplicated into the tables, as the KPL does. The caller
 * must keep the result within Kinesis' 1 MiB record limit.
 */
export function aggregate(records: readonly UserRecord[]): Uint8Array {
  const pkIndex = new Map<string, number>();
  const ehkIndex = new Map<string, number>();
  const parts: Uint8Array[] = [];
  const recordParts: Uint8Array[][] = [];
  for (const rec of records) {
    let pk = pkIndex.get(rec.partitionKey);
    if (pk === undefined) {
      pk = pkIndex.size;
      pkIndex.set(rec.partitionKey, pk);
    }
    const fields: number[] = [...varintBytes(1 * 8 + 0), ...varintBytes(pk)];
    if (rec.explicitHashKey !== undefined) {
      let ehk = ehkIndex.get(rec.explicitHashKey);
      if (ehk === undefined) {
        ehk = ehkIndex.size;
        ehkIndex.set(rec.explicitHashKey, ehk);
      }
      fields.push(...varintBytes(2 * 8 + 0), ...varintBytes(ehk));
    }
    recordParts.push([Uint8Array.from(fields), ...lengthDelimited(3, rec.data)]);
  }
  for (const key of pkIndex.keys()) parts.push(...lengthDelimited(1, utf8enc.encode(key)));
  for (const key of ehkIndex.keys()) parts.push(...lengthDelimited(2, utf8enc.encode(key)));
  for (const rp of recordParts) parts.push(...lengthDelimited(3, Buffer.concat(rp)));
  const protobuf = Buffer.concat(parts);
  const md5 = createHash('md5').update(protobuf).digest();
  return new Uint8Array(Buffer.concat([KPL_MAGIC, protobuf, md5]));
}
