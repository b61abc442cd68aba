import { describe, expect, it } from 'vitest';
import { createForest, createForestSync, loadKernel, type EngineName } from '../../src/index.js';

describe.each<EngineName>(['wasm', 'ts'])('Forest API (%s)', (engine) => {
  it('applies the documented defaults', async () => {
    const f = await createForest({ dimensions: 2, engine });
    expect(f.config).toMatchObject({ numberOfTrees: 50, sampleSize: 256, shingleSize: 1, dimensions: 2, timeDecay: 1 / 2560, outputAfter: 64 });
    expect(f.engine).toBe(engine);
    f.dispose();
  });

  it('scores 0 until ready, then positive, and counts updates', async () => {
    const f = await createForest({ dimensions: 1, sampleSize: 40, numberOfTrees: 5, randomSeed: 3, engine });
    expect(f.config.outputAfter).toBe(10);
    for (let i = 0; i < 10; i++) {
      expect(f.isReady).toBe(false);
      expect(f.score([i])).toBe(0);
      const a = f.attribution([i]);
      expect(Array.from(a.high)).toEqual([0]);
      f.update([i]);
    }
    expect(f.isReady).toBe(true);
    expect(f.totalUpdates).toBe(10);
    expect(f.score([100])).toBeGreaterThan(f.score([5]));
    f.dispose();
  });

  it('gives attribution that sums to the score, and points to the anomalous side', async () => {
    const f = await createForest({ dimensions: 2, shingleSize: 2, numberOfTrees: 30, randomSeed: 11, engine });
    for (let i = 0; i < 500; i++) f.update([Math.sin(i / 10), Math.cos(i / 10)]);
    const p = [0, 25];
    const s = f.score(p);
    const a = f.attribution(p);
    expect(a.high.length).toBe(4);
    const total = a.high.reduce((x, y) => x + y, 0) + a.low.reduce((x, y) => x + y, 0);
    expect(Math.abs(total - s) / s).toBeLessThan(1e-6);
    // newest record's second field (index 3) carries most, on the HIGH side
    const share = a.high[3]! / total;
    expect(share).toBeGreaterThan(0.5);
    f.dispose();
  });

  it('rejects invalid options with errors naming the field', async () => {
    const bad: Array<[object, RegExp]> = [
      [{ dimensions: 0 }, /dimensions must be between 1 and 30/],
      [{ dimensions: 31 }, /dimensions/],
      [{ dimensions: 1.5 }, /dimensions must be an integer/],
      [{ dimensions: 1, shingleSize: 31 }, /shingleSize/],
      [{ dimensions: 1, numberOfTrees: 0 }, /numberOfTrees/],
      [{ dimensions: 1, numberOfTrees: 1001 }, /numberOfTrees/],
      [{ dimensions: 1, sampleSize: 9 }, /sampleSize/],
      [{ dimensions: 1, sampleSize: 5000 }, /sampleSize/],
      [{ dimensions: 1, timeDecay: -1 }, /timeDecay must be >= 0/],
      [{ dimensions: 1, timeDecay: NaN }, /timeDecay must be a finite number/],
      [{ dimensions: 1, outputAfter: 0 }, /outputAfter/],
      [{ dimensions: 1, randomSeed: 2 ** 60 }, /randomSeed must be a safe integer/],
      [{ dimensions: 1, randomSeed: 2n ** 64n }, /randomSeed must fit a signed 64-bit/],
      [{ dimensions: 1, randomSeed: 'abc' }, /randomSeed/],
      [{ dimensions: 1, engine: 'gpu' }, /engine/],
      [{ dimensions: 1, trees: 5 }, /unknown option "trees"/],
    ];
    for (const [options, message] of bad) {
      await expect(createForest({ engine, ...options } as never)).rejects.toThrow(message);
    }
  });

  it('accepts 64-bit seeds as bigint and decimal string alike', async () => {
    const a = await createForest({ dimensions: 1, numberOfTrees: 3, sampleSize: 16, randomSeed: -9007199254740993n, engine });
    const b = await createForest({ dimensions: 1, numberOfTrees: 3, sampleSize: 16, randomSeed: '-9007199254740993', engine });
    const xs = Float64Array.from({ length: 200 }, (_, i) => (i * 7919) % 101);
    expect(Array.from(a.process(xs))).toEqual(Array.from(b.process(xs)));
    a.dispose();
    b.dispose();
  });

  it('rejects bad points before they reach the engine, and keeps the model intact', async () => {
    const f = await createForest({ dimensions: 2, numberOfTrees: 3, sampleSize: 16, engine });
    expect(() => f.update([1])).toThrow(/point has 1 values, expected dimensions = 2/);
    expect(() => f.update([1, NaN])).toThrow(/point\[1\] is NaN/);
    expect(() => f.score([Infinity, 1])).toThrow(/point\[0\] is not finite/);
    expect(() => f.update([1, 1e39])).toThrow(/exceeds the float32-safe range/);
    expect(() => f.update(['1', 2] as never)).toThrow(TypeError);
    expect(() => f.update(null as never)).toThrow(TypeError);
    expect(() => f.process([1, 2, 3])).toThrow(/not a multiple of dimensions/);
    expect(() => f.process([1, 2, 3, NaN])).toThrow(/points\[1\]\[1\] is NaN/);
    expect(() => f.process([1, 2], new Float64Array(0))).toThrow(/out must be/);
    expect(f.totalUpdates).toBe(0); // a batch with a bad value changes nothing
    f.dispose();
  });

  it('throws on use after dispose', async () => {
    const f = await createForest({ dimensions: 1, engine });
    f.dispose();
    f.dispose(); // idempotent
    expect(() => f.score([1])).toThrow(/disposed/);
    expect(() => f.update([1])).toThrow(/disposed/);
    expect(() => f.totalUpdates).toThrow(/disposed/);
  });

  it('writes batch scores into a caller buffer', async () => {
    const f = createForestSync({ dimensions: 1, numberOfTrees: 5, sampleSize: 16, engine });
    const out = new Float64Array(100);
    const ret = f.process(Float64Array.from({ length: 50 }, (_, i) => i % 7), out);
    expect(ret).toBe(out);
    expect(out[49]).toBeGreaterThan(0);
    expect(out[50]).toBe(0);
    f.dispose();
  });
});

describe('many WASM forests in one instance', () => {
  it('keeps 1,000 forests alive at once, and reuses memory after dispose', async () => {
    const kernel = await loadKernel();
    const round = (): void => {
      const forests = Array.from({ length: 1000 }, (_, i) =>
        createForestSync({ dimensions: 1, numberOfTrees: 5, sampleSize: 32, randomSeed: i }),
      );
      const xs = Float64Array.from({ length: 100 }, (_, i) => (i * 31) % 17);
      for (const f of forests) f.process(xs);
      // each forest has its own model: same data, different seeds, different scores
      expect(forests[0]!.score([50])).not.toBe(forests[1]!.score([50]));
      for (const f of forests) f.dispose();
    };
    round();
    const after1 = kernel.memoryBytes;
    for (let i = 0; i < 3; i++) round();
    expect(kernel.memoryBytes).toBe(after1);
  });
});
