import { describe, expect, it } from 'vitest';
import { DetectionBatch, Detector, KeyedDetector, type RecordDetector } from '../../src/detect/detector.js';
import { restoreDetector, snapshotDetector } from '../../src/detect/detector-snapshot.js';
import { graderFactory, type ThresholdStrategy } from '../../src/detect/strategy.js';
import { mulberry32 } from '../../src/generate/temperature.js';
import { SnapshotError, type EngineName } from '../../src/index.js';

const KEYS = ['sensor-a', 'sensor-b', 'sensor-c', 'sensor-d'];

function fill(batch: DetectionBatch, r: () => number, start: number): void {
  batch.count = 0;
  for (let i = 0; i < batch.capacity; i++) {
    const t = start + i;
    // Mostly three keys; a rare fourth forces LRU evictions (maxKeys 3).
    batch.keys[i] = r() < 0.01 ? KEYS[3]! : KEYS[Math.floor(r() * 3)]!;
    batch.values[i] = (r() < 0.01 ? 45 : 30) + Math.sin(t / 40) + r();
    batch.count++;
  }
}

function results(batch: DetectionBatch): string {
  const rows: string[] = [];
  for (let i = 0; i < batch.count; i++) rows.push(`${batch.score[i]} ${batch.grade[i]} ${batch.threshold[i]} ${batch.anomaly[i]}`);
  return rows.join('\n');
}

async function make(strategy: ThresholdStrategy, keyed: boolean, engine: EngineName): Promise<RecordDetector> {
  const options = { forest: { dimensions: 1, numberOfTrees: 20, sampleSize: 64, randomSeed: 5, engine }, grader: await graderFactory(strategy) };
  return keyed ? KeyedDetector.create({ ...options, maxKeys: 3 }) : Detector.create(options);
}

describe('detector snapshots continue exactly', () => {
  const cases: Array<{ strategy: ThresholdStrategy; keyed: boolean; from: EngineName; to: EngineName }> = [
    { strategy: { kind: 'trcf' }, keyed: false, from: 'wasm', to: 'ts' },
    { strategy: { kind: 'fixed', value: 2.5 }, keyed: true, from: 'ts', to: 'wasm' },
    { strategy: { kind: 'trcf' }, keyed: true, from: 'wasm', to: 'wasm' },
    { strategy: { kind: 'quality' }, keyed: false, from: 'wasm', to: 'wasm' },
    { strategy: { kind: 'quality' }, keyed: true, from: 'ts', to: 'ts' },
  ];
  it.each(cases)('$strategy.kind, keyed $keyed, $from -> $to', async ({ strategy, keyed, from, to }) => {
    const original = await make(strategy, keyed, from);
    const r = mulberry32(3);
    const batch = new DetectionBatch(250, 1);
    for (let b = 0; b < 8; b++) {
      fill(batch, r, b * 250);
      original.run(batch);
    }
    const bytes = snapshotDetector(original);
    const restored = await restoreDetector(bytes, {
      forest: { dimensions: 1, numberOfTrees: 20, sampleSize: 64, randomSeed: 5, engine: to },
      grader: await graderFactory(strategy),
      maxKeys: 3,
      engine: to,
    });
    expect(restored.size).toBe(original.size);
    expect([...restored.entries()].map(([k]) => k)).toEqual([...original.entries()].map(([k]) => k));
    const other = new DetectionBatch(250, 1);
    let anomalies = 0;
    for (let b = 8; b < 20; b++) {
      const seed = r();
      fill(batch, mulberry32(Math.floor(seed * 1e9)), b * 250);
      fill(other, mulberry32(Math.floor(seed * 1e9)), b * 250);
      original.run(batch);
      restored.run(other);
      for (let i = 0; i < batch.count; i++) anomalies += batch.anomaly[i]!;
      expect(results(other)).toBe(results(batch));
    }
    expect(anomalies).toBeGreaterThan(0); // the comparison covered graded records
    original.dispose();
    restored.dispose();
  });

  it('rejects a damaged detector snapshot', async () => {
    const d = await make({ kind: 'trcf' }, true, 'wasm');
    const batch = new DetectionBatch(100, 1);
    fill(batch, mulberry32(1), 0);
    d.run(batch);
    const bytes = snapshotDetector(d);
    const damaged = bytes.slice();
    damaged[damaged.length >> 1]! ^= 1;
    const options = { forest: { dimensions: 1 }, grader: await graderFactory({ kind: 'trcf' }) };
    await expect(restoreDetector(damaged, options)).rejects.toThrow(/checksum mismatch/);
    await expect(restoreDetector(bytes.subarray(0, 10), options)).rejects.toBeInstanceOf(SnapshotError);
    await expect(restoreDetector(new Uint8Array(64), options)).rejects.toThrow(/bad magic/);
  });
});
