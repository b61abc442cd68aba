import { describe, expect, it } from 'vitest';
import { TsEngine } from '../../src/engine/ts/ts-engine.js';
import { checkInvariants } from '../../src/engine/ts/invariants.js';
import { WasmEngine } from '../../src/engine/wasm/wasm-engine.js';
import { createForest, type EngineName, type ForestOptions } from '../../src/index.js';
import { mulberry32 } from '../../src/generate/temperature.js';

// Long random streams, then the structural invariants of trees, samplers and the point
// store: exact boxes, separating cuts, leaf masses = sampler multiplicities, heap order,
// reference counts = leaves holding each point, no leaked slots.
const CASES: Array<{ name: string; options: ForestOptions; stream: (r: () => number, i: number) => number[] }> = [
  { name: 'S 64, 3-D, many evictions', options: { dimensions: 3, numberOfTrees: 20, sampleSize: 64, randomSeed: 5 }, stream: (r) => [r() * 10, r() * 10 - 5, r()] },
  { name: 'duplicates on a coarse grid', options: { dimensions: 1, numberOfTrees: 30, sampleSize: 64, randomSeed: 13 }, stream: (r) => [Math.round(r() * 8) / 2] },
  { name: 'shingle 4 with level shifts', options: { dimensions: 1, shingleSize: 4, numberOfTrees: 10, sampleSize: 128, randomSeed: -3 }, stream: (r, i) => [(i % 700 < 350 ? 0 : 100) + r()] },
  // 10 dimensions: cached range sums, the kernel's vector passes and their scalar tail.
  { name: 'wide: 5-D shingle 2, S 64', options: { dimensions: 5, shingleSize: 2, numberOfTrees: 8, sampleSize: 64, randomSeed: 21 }, stream: (r, i) => [r() * 10, r() - 0.5, i % 50 === 0 ? 40 : r(), Math.floor(r() * 4), r() * 1e-3] },
  { name: 'uniform reservoir (timeDecay 0), 2-D shingle 3', options: { dimensions: 2, shingleSize: 3, numberOfTrees: 8, sampleSize: 32, timeDecay: 0, randomSeed: 99 }, stream: (r) => [r(), Math.floor(r() * 3)] },
];

describe.each<EngineName>(['ts', 'wasm'])('forest invariants after long streams (%s)', (engine) => {
  it.each(CASES)('$name', async ({ options, stream }) => {
    const forest = await createForest({ ...options, engine });
    const r = mulberry32(1234);
    const check = (): void => {
      const impl = forest.engineInstance;
      if (impl instanceof TsEngine) expect(checkInvariants(impl.model)).toEqual([]);
      else if (impl instanceof WasmEngine) expect(impl.checkInvariants()).toBe(0);
      else throw new Error('unknown engine');
    };
    for (let i = 0; i < 6000; i++) {
      forest.update(stream(r, i));
      if (i % 1500 === 1499) check();
    }
    check();
    forest.dispose();
  });
});

describe('invariant checkers detect corruption', () => {
  it('the TS checker reports a broken box and a leaked reference', async () => {
    const forest = await createForest({ dimensions: 1, numberOfTrees: 2, sampleSize: 16, randomSeed: 1, engine: 'ts' });
    for (let i = 0; i < 100; i++) forest.update([i % 17]);
    const model = (forest.engineInstance as TsEngine).model;
    expect(checkInvariants(model)).toEqual([]);
    const tree = model.trees[0]!;
    tree.box[2 * tree.root + 1]! += 1; // root's max (1-D)
    expect(checkInvariants(model).join('\n')).toMatch(/box is not the union/);
    tree.box[2 * tree.root + 1]! -= 1;
    model.store.refCount[tree.leafPoint[0]!]! += 1;
    expect(checkInvariants(model).join('\n')).toMatch(/refCount/);
  });

  it('the TS checker reports a stale cached range sum (D >= 8)', async () => {
    const forest = await createForest({ dimensions: 4, shingleSize: 2, numberOfTrees: 2, sampleSize: 16, randomSeed: 1, engine: 'ts' });
    for (let i = 0; i < 100; i++) forest.update([i % 17, i % 5, (i * 7) % 11, 1]);
    const model = (forest.engineInstance as TsEngine).model;
    expect(checkInvariants(model)).toEqual([]);
    const tree = model.trees[0]!;
    tree.boxRange[tree.root]! += 1e-9;
    expect(checkInvariants(model).join('\n')).toMatch(/cached range sum is stale/);
  });
});
