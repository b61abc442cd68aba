import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { CheckpointLockedError, FileCheckpointStore } from '../../src/checkpoint/file-store.js';
import { requireBuilt, ROOT } from '../cli/cli-support.js';
import { CheckpointCorruptError, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/checkpoint/checkpoint-store.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rcf-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const allBytes = Uint8Array.from({ length: 1024 }, (_, i) => i % 256);

function checkpoint(n: number, models?: Uint8Array): Checkpoint {
  const cp: Checkpoint = {
    shards: {
      'shardId-000000000000': { sequenceNumber: `4959${n}000000000000000000000000000000000000000000000000` },
      'shardId-000000000001': { sequenceNumber: 'AT_TIMESTAMP', timestamp: '2024-05-01T10:00:00.000Z' },
      'shardId-000000000002': { sequenceNumber: '49590000000000000000000000000000000000000000000000000001', subSequence: 3 },
      'shardId-000000000003': { sequenceNumber: 'SHARD_END', ended: true },
    },
    updatedAt: new Date(1_700_000_000_000 + n).toISOString(),
  };
  if (models) cp.models = models;
  return cp;
}

describe('FileCheckpointStore', () => {
  it('returns undefined when nothing was saved, then round-trips positions and binary models', async () => {
    const store = new FileCheckpointStore(join(dir, 'a.ckpt'));
    expect(await store.load()).toBeUndefined();
    await store.save(checkpoint(1, allBytes));
    const back = await store.load();
    expect(back).toEqual(checkpoint(1, allBytes));
    expect(back!.models).toBeInstanceOf(Uint8Array);
    await store.save(checkpoint(2));
    expect(await store.load()).toEqual(checkpoint(2));
    await store.save(checkpoint(3, new Uint8Array(0)));
    expect((await store.load())!.models).toEqual(new Uint8Array(0));
    // No temp files left behind by successful saves.
    expect((await readdir(dir)).filter((f) => f.startsWith('a.ckpt.tmp'))).toEqual([]);
  });

  it('a crash mid-write (temp file written, never renamed) leaves the old checkpoint', async () => {
    const store = new FileCheckpointStore(join(dir, 'b.ckpt'));
    await store.save(checkpoint(1, allBytes));
    // What save() would have written for the next checkpoint, cut off half-way, and no rename.
    const next = encodeCheckpoint(checkpoint(2, allBytes));
    await writeFile(store.tempPath(), next.subarray(0, next.length >> 1));
    expect(await store.load()).toEqual(checkpoint(1, allBytes));
    expect(await store.removeStaleTempFiles()).toBe(1);
    expect(await store.load()).toEqual(checkpoint(1, allBytes));
    await store.save(checkpoint(2, allBytes));
    expect(await store.load()).toEqual(checkpoint(2, allBytes));
  });

  it('reports corrupt content clearly instead of starting from scratch', async () => {
    const path = join(dir, 'c.ckpt');
    const store = new FileCheckpointStore(path);
    await store.save(checkpoint(1, allBytes));
    const good = await readFile(path);

    const flipped = Buffer.from(good);
    flipped[40]! ^= 0xff;
    await writeFile(path, flipped);
    await expect(store.load()).rejects.toThrow(CheckpointCorruptError);
    await expect(store.load()).rejects.toThrow(/c\.ckpt is corrupt: checksum mismatch/);

    await writeFile(path, good.subarray(0, good.length - 5));
    await expect(store.load()).rejects.toThrow(/corrupt/);

    await writeFile(path, JSON.stringify({ shards: {}, updatedAt: new Date().toISOString(), note: 'plain JSON, not an envelope' }));
    await expect(store.load()).rejects.toThrow(/bad magic/);

    await writeFile(path, '');
    await expect(store.load()).rejects.toThrow(/only 0 bytes/);
  });

  it('the envelope validates positions even with a valid digest', () => {
    const bad = { shards: { s: { sequenceNumber: 'AT_TIMESTAMP' } }, updatedAt: new Date().toISOString() } as Checkpoint;
    expect(() => decodeCheckpoint(encodeCheckpoint(bad), 'mem')).toThrow(/AT_TIMESTAMP without a timestamp/);
    const noDate = { shards: {}, updatedAt: 'yesterday' } as Checkpoint;
    expect(() => decodeCheckpoint(encodeCheckpoint(noDate), 'mem')).toThrow(/updatedAt/);
  });
});

describe('FileCheckpointStore lock (lock: true)', () => {
  /** A pid that surely does not run: a child that has exited. */
  const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!;

  it('a second store on the same file is refused until the first closes', async () => {
    const path = join(dir, 'locked.ckpt');
    const first = new FileCheckpointStore({ path, lock: true });
    expect(await first.load()).toBeUndefined();
    expect((await readFile(`${path}.lock`, 'utf8')).startsWith(`${process.pid}@${hostname()} `)).toBe(true);
    const second = new FileCheckpointStore({ path, lock: true });
    const err = await second.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect((err as Error).message).toContain(`is in use by process ${process.pid}@${hostname()} (lock file ${path}.lock)`);
    await expect(second.save(checkpoint(1))).rejects.toThrow(CheckpointLockedError);
    await first.save(checkpoint(1));
    await first.close();
    expect((await readdir(dir)).filter((f) => f.startsWith('locked.ckpt.lock'))).toEqual([]);
    expect(await second.load()).toEqual(checkpoint(1));
    await second.close();
  });

  it('takes over a lock left by a process that is gone, and removes the temp files it left', async () => {
    const path = join(dir, 'stale.ckpt');
    const plain = new FileCheckpointStore(path);
    await plain.save(checkpoint(1, allBytes));
    const pid = deadPid();
    await writeFile(`${path}.lock`, `${pid}@${hostname()} 0123456789ab\n`);
    const half = encodeCheckpoint(checkpoint(2, allBytes));
    await writeFile(`${path}.tmp-${pid}-deadbeef`, half.subarray(0, 100));
    const store = new FileCheckpointStore({ path, lock: true });
    expect(await store.load()).toEqual(checkpoint(1, allBytes));
    const left = (await readdir(dir)).filter((f) => f.startsWith('stale.ckpt.'));
    expect(left).toEqual(['stale.ckpt.lock']);
    expect((await readFile(`${path}.lock`, 'utf8')).startsWith(`${process.pid}@`)).toBe(true);
    await store.close();
  });

  it('refuses a lock from another host (its process cannot be checked from here)', async () => {
    const path = join(dir, 'remote.ckpt');
    await writeFile(`${path}.lock`, `${deadPid()}@some-other-host 0123456789ab\n`);
    await expect(new FileCheckpointStore({ path, lock: true }).load()).rejects.toThrow(/in use by process \d+@some-other-host/);
  });

  it('a process that exits without close() leaves no lock; one killed with SIGKILL leaves one that is taken over', async () => {
    requireBuilt();
    const path = join(dir, 'exit.ckpt');
    const script = (end: string): string =>
      `import('${join(ROOT, 'dist', 'src', 'checkpoint', 'file-store.js')}').then(async ({ FileCheckpointStore }) => {` +
      ` await new FileCheckpointStore({ path: ${JSON.stringify(path)}, lock: true }).load(); ${end} })`;
    const exited = spawnSync(process.execPath, ['-e', script('process.exit(3);')]);
    expect(exited.status).toBe(3);
    expect((await readdir(dir)).filter((f) => f === 'exit.ckpt.lock')).toEqual([]);
    const killed = spawnSync(process.execPath, ['-e', script("process.kill(process.pid, 'SIGKILL');")]);
    expect(killed.signal).toBe('SIGKILL');
    expect((await readFile(`${path}.lock`, 'utf8')).startsWith(`${killed.pid}@`)).toBe(true);
    const next = new FileCheckpointStore({ path, lock: true });
    expect(await next.load()).toBeUndefined();
    expect((await readFile(`${path}.lock`, 'utf8')).startsWith(`${process.pid}@`)).toBe(true);
    await next.close();
  });

  it('without lock: true (reading a checkpoint) no lock file is made', async () => {
    const path = join(dir, 'nolock.ckpt');
    const s = new FileCheckpointStore(path);
    await s.save(checkpoint(1));
    expect(await s.load()).toEqual(checkpoint(1));
    expect((await readdir(dir)).filter((f) => f.startsWith('nolock.ckpt.lock'))).toEqual([]);
  });
});
