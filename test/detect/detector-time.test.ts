/**
 * Timestamps through the detectors: DetectionBatch.time reaches the quality grader for
 * single and keyed, univariate and multi-field models, both engines agree, and snapshots
 * hold the time-dependent state.
 */
import { describe, expect, it } from 'vitest';
import { DetectionBatch, Detector, KeyedDetector, type RecordDetector } from '../../src/detect/detector.js';
import { restoreDetector, snapshotDetector } from '../../src/detect/detector-snapshot.js';
import { graderFactory } from '../../src/detect/strategy.js';
import { mulberry32 } from '../../src/generate/temperature.js';
import type { EngineName } from '../../src/index.js';

const START = Date.UTC(2021, 2, 1);
const STEP = 5 * 60_000;
const KEYS = ['host-a', 'host-b'];
const B = 300;

/** Batch `n` of a 2-field stream with a daily burst at 02:00 and timestamps (or NaN). */
function fill(batch: DetectionBatch, n: number, keyed: boolean, timed: boolean): void {
  const r = mulberry32(1000 + n);
  batch.count = batch.capacity;
  for (let j = 0; j < batch.capacity; j++) {
    const i = n * batch.capacity + j;
    const record = keyed ? Math.floor(i / 2) : i;
    const burst = record % 288 >= 24 && record % 288 < 27 ? 6 : 0;
    batch.keys[j] = keyed ? KEYS[i % 2]! : '';
    batch.values[2 * j] = 10 + r() + burst;
    batch.values[2 * j + 1] = 50 + 2 * r() - burst;
    batch.time[j] = timed ? START + record * STEP : Number.NaN;
  }
}

function results(batch: DetectionBatch): string[] {
  return Array.from({ length: batch.count }, (_, i) => `${batch.score[i]} ${batch.grade[i]} ${batch.threshold[i]} ${batch.anomaly[i]}`);
}

async function make(keyed: boolean, engine: EngineName): Promise<RecordDetector> {
  const options = { forest: { dimensions: 2, numberOfTrees: 30, sampleSize: 128, randomSeed: 9, engine }, grader: await graderFactory({ kind: 'quality' }) };
  return keyed ? KeyedDetector.create(options) : Detector.create(options);
}

async function runAll(detector: RecordDetector, keyed: boolean, timed: boolean, from: number, to: number): Promise<string[]> {
  const batch = new DetectionBatch(B, 2);
  const out: string[] = [];
  for (let n = from; n < to; n++) {
    fill(batch, n, keyed, timed);
    detector.run(batch);
    out.push(...results(batch));
  }
  return out;
}

describe.each([false, true])('quality detector with timestamps, keyed %s', (keyed) => {
  const batches = keyed ? 80 : 40; // 10 days of 5-minute records per model

  it('gives the same results on both engines, and the timestamps change them', async () => {
    const wasm = await make(keyed, 'wasm');
    const ts = await make(keyed, 'ts');
    const untimed = await make(keyed, 'wasm');
    const a = await runAll(wasm, keyed, true, 0, batches);
    const b = await runAll(ts, keyed, true, 0, batches);
    const c = await runAll(untimed, keyed, false, 0, batches);
    expect(b).toEqual(a);
    const alarms = (rows: string[]): number => rows.filter((row) => row.endsWith(' 1')).length;
    // The daily burst alarms every day without the time of day, only the first days with it.
    expect(alarms(a)).toBeLessThan(alarms(c));
    expect(alarms(a)).toBeGreaterThan(0);
    for (const d of [wasm, ts, untimed]) d.dispose();
  });

  it('continues exactly from a snapshot taken mid-stream', async () => {
    const reference = await make(keyed, 'wasm');
    const expected = await runAll(reference, keyed, true, 0, batches);
    const first = await make(keyed, 'wasm');
    const cut = Math.floor(batches * 0.55);
    await runAll(first, keyed, true, 0, cut);
    const restored = await restoreDetector(snapshotDetector(first), {
      forest: { dimensions: 2, numberOfTrees: 30, sampleSize: 128, randomSeed: 9 },
      grader: await graderFactory({ kind: 'quality' }),
      engine: 'ts',
    });
    const rest = await runAll(restored, keyed, true, cut, batches);
    expect(rest).toEqual(expected.slice(cut * B));
    for (const d of [reference, first, restored]) d.dispose();
  });
});
