/**
 * Named models on worker threads (src/detect/model-workers.ts): scores, snapshots and
 * restored models equal the same detectors run on this thread, whatever the worker count.
 * The pool is loaded from dist/ (a worker thread runs compiled JavaScript).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DetectionBatch, type RecordDetector } from '../../src/detect/detector.js';
import { createRecordDetector, type DetectorSpec } from '../../src/detect/detector-spec.js';
import { snapshotDetector } from '../../src/detect/detector-snapshot.js';
import { mulberry32 } from '../../src/generate/temperature.js';
import { ROOT, requireBuilt } from '../cli/cli-support.js';
import type { ModelWorkerPool as Pool } from '../../src/detect/model-workers.js';

let ModelWorkerPool: typeof Pool;
let modelWorkerOf: (name: string, workers: number) => number;

beforeAll(async () => {
  requireBuilt();
  const mod = (await import(pathToFileURL(join(ROOT, 'dist', 'src', 'detect', 'model-workers.js')).href)) as typeof import('../../src/detect/model-workers.js');
  ModelWorkerPool = mod.ModelWorkerPool;
  modelWorkerOf = mod.modelWorkerOf;
});

const pools: Pool[] = [];
const inline: RecordDetector[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  for (const d of inline.splice(0)) d.dispose();
});

const NAMES = ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003'];

function specOf(keyed: boolean): DetectorSpec {
  return { forest: { dimensions: 2, numberOfTrees: 12, sampleSize: 32, randomSeed: 11 }, threshold: { kind: 'trcf' }, attribution: true, keyed, maxKeys: 100 };
}

/** Batch `round` of `name`: deterministic values with a few spikes, keys over 5 values. */
function batchOf(name: string, round: number): DetectionBatch {
  const random = mulberry32(round * 97 + name.length * 13 + name.charCodeAt(name.length - 1));
  const batch = new DetectionBatch(300, 2, 2);
  for (let i = 0; i < 300; i++) {
    const spike = random() < 0.02 ? 20 * random() : 0;
    batch.values[2 * i] = 10 + random() + spike;
    batch.values[2 * i + 1] = 5 + random();
    batch.time[i] = round * 1000 + i;
    batch.keys[i] = `k${Math.floor(random() * 5)}`;
  }
  batch.count = 300;
  return batch;
}

function columns(batch: DetectionBatch): string {
  const rows: string[] = [];
  for (let i = 0; i < batch.count; i++) rows.push(`${batch.score[i]} ${batch.grade[i]} ${batch.threshold[i]} ${batch.anomaly[i]} ${batch.high?.[2 * i]} ${batch.low?.[2 * i + 1]}`);
  return rows.join('\n');
}

describe('ModelWorkerPool', () => {
  it('spreads the four shard names over two workers', () => {
    const owners = new Set(NAMES.map((n) => modelWorkerOf(n, 2)));
    expect(owners).toEqual(new Set([0, 1]));
  });

  for (const keyed of [false, true]) {
    it(`scores, snapshots and restores exactly as detectors on this thread (${keyed ? 'keyed' : 'unkeyed'})`, async () => {
      const spec = specOf(keyed);
      const here = new Map<string, RecordDetector>();
      for (const name of NAMES) {
        const d = await createRecordDetector(spec);
        inline.push(d);
        here.set(name, d);
      }
      const pool = await ModelWorkerPool.start(spec, 2);
      pools.push(pool);
      let anomalies = 0;
      for (let round = 0; round < 3; round++) {
        // Batches of all names in flight at once, as a service's shards would be.
        const remote = NAMES.map((name) => batchOf(name, round));
        await Promise.all(NAMES.map((name, i) => pool.run(name, remote[i]!)));
        for (const [i, name] of NAMES.entries()) {
          const local = batchOf(name, round);
          here.get(name)!.run(local);
          expect(columns(remote[i]!)).toBe(columns(local));
          for (let r = 0; r < local.count; r++) anomalies += local.anomaly[r]!;
        }
      }
      expect(anomalies).toBeGreaterThan(0); // the comparison covers anomaly flags that are set
      expect(pool.size).toBe([...here.values()].reduce((n, d) => n + d.size, 0));

      const saved = await pool.snapshot();
      expect([...saved.keys()]).toEqual(NAMES);
      for (const name of NAMES) expect(Buffer.from(saved.get(name)!).equals(Buffer.from(snapshotDetector(here.get(name)!)))).toBe(true);

      // Restored on one worker, the models go on exactly as the originals.
      const single = await ModelWorkerPool.start(spec, 1);
      pools.push(single);
      await single.load(saved);
      for (const name of NAMES) {
        const remote = batchOf(name, 7);
        await single.run(name, remote);
        const local = batchOf(name, 7);
        here.get(name)!.run(local);
        expect(columns(remote)).toBe(columns(local));
      }
    }, 60_000);
  }

  it('spread by key: one name\'s keyed models over three workers score exactly as one detector on this thread', async () => {
    const spec = specOf(true);
    const here = await createRecordDetector(spec);
    inline.push(here);
    const pool = await ModelWorkerPool.start(spec, 3, 'keys');
    pools.push(pool);
    // batchOf's five keys land on more than one worker, so batches are really split.
    expect(new Set(['k0', 'k1', 'k2', 'k3', 'k4'].map((k) => pool.workerOfKey(k))).size).toBeGreaterThan(1);
    let anomalies = 0;
    for (let round = 0; round < 4; round++) {
      // Two batches in flight at once, as detect submits them.
      const remote = [batchOf('input', 2 * round), batchOf('input', 2 * round + 1)];
      await Promise.all(remote.map((b) => pool.run('input', b)));
      for (const [i, b] of remote.entries()) {
        const local = batchOf('input', 2 * round + i);
        here.run(local);
        expect(columns(b)).toBe(columns(local));
        for (let r = 0; r < local.count; r++) anomalies += local.anomaly[r]!;
      }
    }
    expect(anomalies).toBeGreaterThan(0);
    expect(pool.size).toBe(here.size);
    await expect(pool.snapshot()).rejects.toMatchObject({ code: 'MODEL_WORKER' });
    await expect(ModelWorkerPool.start(specOf(false), 2, 'keys')).rejects.toMatchObject({ code: 'MODEL_WORKER' });
  }, 60_000);

  it('reports a worker-side failure on the call, not as a crash', async () => {
    const pool = await ModelWorkerPool.start(specOf(false), 1);
    pools.push(pool);
    await expect(pool.load([['shardId-x', new Uint8Array([1, 2, 3])]])).rejects.toMatchObject({ code: 'MODEL_WORKER' });
    const batch = batchOf('shardId-x', 0);
    await pool.run('shardId-x', batch); // the worker still serves
    expect(batch.score[0]).toBeGreaterThanOrEqual(0);
  }, 30_000);
});
