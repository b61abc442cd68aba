import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCheckpointPath, FileCheckpointStore } from '../../src/checkpoint/file-store.js';
import {
  bindCheckpointToStream,
  CheckpointCorruptError,
  CheckpointStreamMismatchError,
  decodeCheckpoint,
  encodeCheckpoint,
  sameStream,
  type Checkpoint,
} from '../../src/checkpoint/checkpoint-store.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rcf-ckpt-stream-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ARN_A = 'arn:aws:kinesis:us-east-1:123456789012:stream/stream-a';
const cp = (): Checkpoint => ({ shards: { 'shardId-000000000000': { sequenceNumber: '4959' } }, updatedAt: '2024-05-01T10:00:00.000Z', models: Uint8Array.of(1, 2, 3) });

describe('checkpoint stream identity', () => {
  it('the envelope keeps the stream, and a checkpoint without one still reads', () => {
    expect(decodeCheckpoint(encodeCheckpoint({ ...cp(), stream: ARN_A }), 'x').stream).toBe(ARN_A);
    expect(decodeCheckpoint(encodeCheckpoint(cp()), 'x')).toEqual(cp());
  });

  it('a bound store stamps the stream and refuses another stream’s checkpoint, naming both', async () => {
    const file = new FileCheckpointStore(join(dir, 'shared.checkpoint'));
    const a = bindCheckpointToStream(file, 'stream-a', 'file:shared.checkpoint');
    await a.save(cp());
    expect((await file.load())!.stream).toBe('stream-a');
    expect(await a.load()).toEqual({ ...cp(), stream: 'stream-a' });

    const b = bindCheckpointToStream(file, 'stream-b', 'file:shared.checkpoint');
    const err = await b.load().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CheckpointStreamMismatchError);
    expect((err as Error).message).toMatch(/^Checkpoint at file:shared\.checkpoint belongs to stream stream-a, not stream-b/);
  });

  it('a name and its ARN are the same stream; two different ARNs are not', async () => {
    expect(sameStream(ARN_A, 'stream-a')).toBe(true);
    expect(sameStream('stream-a', ARN_A)).toBe(true);
    expect(sameStream(ARN_A, 'arn:aws:kinesis:eu-west-1:123456789012:stream/stream-a')).toBe(false);
    expect(sameStream('stream-a', 'stream-ab')).toBe(false);
    const file = new FileCheckpointStore(join(dir, 'arn.checkpoint'));
    await bindCheckpointToStream(file, ARN_A).save(cp());
    expect((await bindCheckpointToStream(file, 'stream-a').load())!.stream).toBe(ARN_A);
  });

  it('a checkpoint saved before streams were recorded is adopted and stamped at the next save', async () => {
    const file = new FileCheckpointStore(join(dir, 'legacy.checkpoint'));
    await file.save(cp());
    const bound = bindCheckpointToStream(file, 'stream-c');
    const loaded = await bound.load();
    expect(loaded!.stream).toBeUndefined();
    await bound.save(loaded!);
    expect((await file.load())!.stream).toBe('stream-c');
  });

  it('a stream field that is not a non-empty string is corruption', () => {
    const bytes = encodeCheckpoint({ ...cp(), stream: '' });
    expect(() => decodeCheckpoint(bytes, 'x')).toThrow(CheckpointCorruptError);
  });

  it('the default file is named after the stream', () => {
    expect(defaultCheckpointPath('In-RCFData-Stream')).toBe('./rcf-stream-In-RCFData-Stream.checkpoint');
    expect(defaultCheckpointPath(ARN_A)).toBe('./rcf-stream-stream-a.checkpoint');
  });
});
