import { describe, expect, it } from 'vitest';
import { DetectionBatch, Detector, KeyedDetector, fnv1a64, keySeed } from '../../src/detect/detector.js';
import { FixedThresholdGrader } from '../../src/detect/grader.js';
import { TrcfThresholder } from '../../src/detect/thresholder.js';
import { createForest, type Forest } from '../../src/index.js';
import { TemperatureSeries } from '../../src/generate/temperature.js';

const fixed = (): FixedThresholdGrader => new FixedThresholdGrader(2);

function temperatures(count: number, seed = 42): Float64Array {
  const series = new TemperatureSeries({ count, seed });
  const out = new Float64Array(count);
  for (let i = 0; series.advance(); i++) out[i] = series.value;
  return out;
}

/** Runs `values` through the detector in batches of `size`, collecting the results. */
function runBatches(detector: Detector | KeyedDetector, values: Float64Array, size: number, keys?: string[], attribution = 0) {
  const batch = new DetectionBatch(size, 1, attribution);
  const score: number[] = [];
  const anomaly: number[] = [];
  const high: number[] = [];
  for (let start = 0; start < values.length; start += size) {
    const n = Math.min(size, values.length - start);
    batch.values.set(values.subarray(start, start + n));
    if (keys) for (let i = 0; i < n; i++) batch.keys[i] = keys[start + i]!;
    batch.count = n;
    detector.run(batch);
    score.push(...batch.score.subarray(0, n));
    anomaly.push(...batch.anomaly.subarray(0, n));
    if (batch.high) high.push(...batch.high.subarray(0, n * attribution));
  }
  return { score, anomaly, high };
}

/** The AWS protocol by hand, one record at a time. */
function reference(forest: Forest, values: ArrayLike<number>, withAttribution = false) {
  const score: number[] = [];
  const high: number[] = [];
  for (let i = 0; i < values.length; i++) {
    score.push(forest.score([values[i]!]));
    if (withAttribution) high.push(...forest.attribution([values[i]!]).high);
    forest.update([values[i]!]);
  }
  return { score, high };
}

describe('Detector', () => {
  const values = temperatures(3000);

  it('batch scoring gives exactly the per-record protocol’s scores, from the first record on', async () => {
    const detector = await Detector.create({ forest: { dimensions: 1, randomSeed: 9 }, grader: fixed });
    // Batches that straddle the warm-up (outputAfter 64) and a final partial batch.
    const ours = runBatches(detector, values, 50);
    const ref = reference(await createForest({ dimensions: 1, randomSeed: 9 }), values);
    expect(ours.score).toEqual(ref.score);
    expect(ours.score.slice(0, 64).every((s) => s === 0)).toBe(true);
    expect(ours.anomaly).toEqual(ref.score.map((s) => (s >= 2 ? 1 : 0)));
    expect(ours.anomaly.some((a) => a === 1)).toBe(true);
    detector.dispose();
  });

  it('with attribution, records each record’s attribution taken before its update', async () => {
    const detector = await Detector.create({ forest: { dimensions: 1, randomSeed: 9, engine: 'ts' }, grader: fixed, attribution: true });
    const ours = runBatches(detector, values.subarray(0, 400), 128, undefined, 1);
    const ref = reference(await createForest({ dimensions: 1, randomSeed: 9, engine: 'ts' }), values.subarray(0, 400), true);
    expect(ours.score).toEqual(ref.score);
    expect(ours.high).toEqual(ref.high);
  });

  it('reports the score a grader redefines (TRCF’s initial segment)', async () => {
    const detector = await Detector.create({
      forest: { dimensions: 1, sampleSize: 20, randomSeed: 1 },
      grader: (c) => new TrcfThresholder({ dimensions: 1, timeDecay: c.timeDecay }),
    });
    const plain = reference(await createForest({ dimensions: 1, sampleSize: 20, randomSeed: 1 }), values.subarray(0, 40));
    const ours = runBatches(detector, values.subarray(0, 40), 40);
    // outputAfter is 5 here, so the forest scores records 5..9, which TRCF reports as 0.
    expect(plain.score[5]).toBeGreaterThan(0);
    expect(ours.score.slice(0, 10)).toEqual(new Array(10).fill(0));
    expect(ours.score.slice(10)).toEqual(plain.score.slice(10));
  });

  it('exposes its model for snapshots and takes a replacement', async () => {
    const detector = await Detector.create({ forest: { dimensions: 1 }, grader: fixed });
    const [[key, model]] = [...detector.entries()];
    expect(key).toBe('');
    expect(model).toBe(detector.model);
    const replacement = { forest: await createForest({ dimensions: 1 }), grader: fixed() };
    detector.insert('', replacement);
    expect(detector.model).toBe(replacement);
    expect(() => model.forest.totalUpdates).toThrow(/disposed/);
  });
});

describe('keyed models', () => {
  it('hashes keys with 64-bit FNV-1a (published test vectors)', () => {
    const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');
    expect(fnv1a64(utf8(''))).toBe(0xcbf29ce484222325n);
    expect(fnv1a64(utf8('a'))).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64(utf8('foobar'))).toBe(0x85944171f73967e8n);
  });

  it('derives a deterministic, signed 64-bit seed per (base seed, key)', () => {
    const s = keySeed(0n, 'sensor-1');
    expect(keySeed(0n, 'sensor-1')).toBe(s);
    expect(s).toBeGreaterThanOrEqual(-(2n ** 63n));
    expect(s).toBeLessThan(2n ** 63n);
    const others = [keySeed(0n, 'sensor-2'), keySeed(1n, 'sensor-1'), keySeed(0n, 'sensor-1 '), keySeed(0n, 'Sensor-1')];
    expect(new Set([s, ...others]).size).toBe(5);
  });

  it('gives each key its own model, identical to a forest seeded for that key and fed only its records', async () => {
    const values = temperatures(1200, 7);
    const keys = Array.from(values, (_, i) => (i % 3 === 0 ? 'a' : 'b'));
    const detector = await KeyedDetector.create({ forest: { dimensions: 1, randomSeed: 5 }, grader: fixed });
    const ours = runBatches(detector, values, 100, keys);
    expect(detector.size).toBe(2);
    for (const key of ['a', 'b']) {
      const own = Array.from(values).filter((_, i) => keys[i] === key);
      const ref = reference(await createForest({ dimensions: 1, randomSeed: keySeed(5n, key) }), own);
      expect(ours.score.filter((_, i) => keys[i] === key)).toEqual(ref.score);
    }
    expect(detector.seedFor('a')).toBe(keySeed(5n, 'a'));
  });

  it('keeps at most maxKeys models, dropping the least recently used, and counts evictions', async () => {
    const evicted: string[] = [];
    const detector = await KeyedDetector.create({ forest: { dimensions: 1 }, grader: fixed, maxKeys: 2, onEvict: (k) => evicted.push(k) });
    const keys = ['a', 'b', 'a', 'c', 'b'];
    runBatches(detector, Float64Array.from(keys, () => 30), 2, keys);
    expect(evicted).toEqual(['b', 'a']);
    expect(detector.evictions).toBe(2);
    expect([...detector.entries()].map(([k]) => k)).toEqual(['c', 'b']);
    // 'b' came back as a new model: it has learned one record, not two.
    expect(detector.get('b')!.forest.totalUpdates).toBe(1);
    expect(detector.get('c')!.forest.totalUpdates).toBe(1);
  });

  it('takes restored models, most recently used last', async () => {
    const detector = await KeyedDetector.create({ forest: { dimensions: 1 }, grader: fixed, maxKeys: 3 });
    const model = { forest: await createForest({ dimensions: 1 }), grader: fixed() };
    detector.insert('restored', model);
    runBatches(detector, Float64Array.of(30), 1, ['new']);
    expect([...detector.entries()].map(([k]) => k)).toEqual(['restored', 'new']);
    expect(detector.get('restored')).toBe(model);
    detector.dispose();
    expect(detector.size).toBe(0);
  });

  it('rejects bad options before any record arrives', async () => {
    await expect(KeyedDetector.create({ forest: { dimensions: 1, numberOfTrees: 0 }, grader: fixed })).rejects.toThrow(/numberOfTrees/);
    await expect(KeyedDetector.create({ forest: { dimensions: 1 }, grader: fixed, maxKeys: 0 })).rejects.toThrow(/maxKeys/);
  });
});
