import { describe, expect, it } from 'vitest';
import { TsEngine } from '../../src/engine/ts/ts-engine.js';
import { checkInvariants } from '../../src/engine/ts/invariants.js';
import { WasmEngine } from '../../src/engine/wasm/wasm-engine.js';
import { createForest, decodeSnapshot, restoreForest, SnapshotError, type EngineName, type Forest, type ForestOptions } from '../../src/index.js';
import { mulberry32 } from '../../src/generate/temperature.js';
import { crc32 } from '../../src/util/binary.js';
import { loadVectorSet } from '../support/vectors.js';

const ENGINES: EngineName[] = ['wasm', 'ts'];

function stream(seed: number, b: number): (i: number) => number[] {
  const r = mulberry32(seed);
  return (i) => Array.from({ length: b }, (_, d) => (r() < 0.02 ? 50 : Math.sin(i / 30 + d) * 5) + Math.round(r() * 4) / 2);
}

function sound(f: Forest): void {
  const e = f.engineInstance;
  if (e instanceof TsEngine) expect(checkInvariants(e.model)).toEqual([]);
  else if (e instanceof WasmEngine) expect(e.checkInvariants()).toBe(0);
}

/** Continues a and b on the same points; returns the first difference, if any. */
function continueBoth(a: Forest, b: Forest, next: (i: number) => number[], from: number, n: number): string | undefined {
  for (let i = from; i < from + n; i++) {
    const x = next(i);
    const sa = a.score(x);
    const sb = b.score(x);
    if (sa !== sb) return `point ${i}: ${sa} vs ${sb}`;
    if (i % 5 === 0) {
      const aa = a.attribution(x);
      const ab = b.attribution(x);
      for (let d = 0; d < aa.high.length; d++) {
        if (aa.high[d] !== ab.high[d] || aa.low[d] !== ab.low[d]) return `point ${i}: attribution ${d} differs`;
      }
    }
    a.update(x);
    b.update(x);
  }
  return undefined;
}

describe('snapshot and restore continue exactly', () => {
  const r = mulberry32(4242);
  const cases = Array.from({ length: 10 }, (_, k) => {
    const options: ForestOptions = {
      dimensions: 1 + Math.floor(r() * 4),
      shingleSize: 1 + Math.floor(r() * 6),
      numberOfTrees: 1 + Math.floor(r() * 30),
      sampleSize: 10 + Math.floor(r() * 300),
      randomSeed: Math.floor(r() * 1e9) - 5e8,
    };
    if (r() < 0.3) options.timeDecay = r() * 0.01;
    return { k, options, cut: Math.floor(r() * 3000), from: ENGINES[k % 2]!, to: ENGINES[Math.floor(k / 2) % 2]! };
  });
  it.each(cases)('case $k: $from -> $to, snapshot after $cut points', async ({ options, cut, from, to }) => {
    const next = stream(99, options.dimensions);
    const original = await createForest({ ...options, engine: from });
    for (let i = 0; i < cut; i++) original.update(next(i));
    const restored = await restoreForest(original.snapshot(), { engine: to });
    expect(restored.engine).toBe(to);
    expect(restored.config).toEqual(original.config);
    expect(restored.totalUpdates).toBe(cut);
    sound(restored);
    expect(continueBoth(original, restored, next, cut, 1500) ?? 'identical').toBe('identical');
    sound(restored);
    original.dispose();
    restored.dispose();
  });

  it('restores forests that are empty or still filling their shingle', async () => {
    for (const engine of ENGINES) {
      const f = await createForest({ dimensions: 2, shingleSize: 4, numberOfTrees: 5, sampleSize: 16, engine });
      const empty = await restoreForest(f.snapshot(), { engine });
      f.update([1, 2]);
      f.update([3, 4]);
      const filling = await restoreForest(f.snapshot(), { engine: engine === 'wasm' ? 'ts' : 'wasm' });
      empty.update([1, 2]);
      empty.update([3, 4]);
      const next = stream(5, 2);
      expect(continueBoth(f, filling, next, 2, 300) ?? 'identical').toBe('identical');
      expect(continueBoth(empty, await restoreForest(f.snapshot(), { engine }), next, 302, 1) ?? 'x').not.toBe('x');
    }
  });
});

describe('snapshot format', () => {
  it('holds the same model words whichever engine wrote it', async () => {
    const xs = Float64Array.from({ length: 3 * 2000 }, (_, i) => Math.sin(i) * 10 + (i % 7));
    const [a, b] = await Promise.all(ENGINES.map((engine) => createForest({ dimensions: 3, shingleSize: 2, numberOfTrees: 12, sampleSize: 64, randomSeed: 8, engine })));
    a!.process(xs);
    b!.process(xs);
    const sa = decodeSnapshot(a!.snapshot());
    const sb = decodeSnapshot(b!.snapshot());
    expect(sa.engine).toBe('wasm');
    expect(sa.binaryId).toMatch(/^[0-9a-f]{16}$/);
    expect(sb.engine).toBe('ts');
    expect(Array.from(sa.words)).toEqual(Array.from(sb.words));
  });

  it('stays under 200 KB for 50 trees x 256 samples x 1-D after 20,000 records', async () => {
    const v = loadVectorSet('temp_t50_s1');
    const f = await createForest({ dimensions: 1, randomSeed: 7 });
    f.process(v.inputs.subarray(0, 20000));
    expect(f.snapshot().length).toBeLessThan(200 * 1024);
  });

  describe('rejects damaged input with a SnapshotError', () => {
    let good: Uint8Array;
    const resealed = (bytes: Uint8Array): Uint8Array => {
      const out = bytes.slice();
      new DataView(out.buffer).setUint32(out.length - 4, crc32(out, 0, out.length - 4), true);
      return out;
    };
    it.each(ENGINES)('into the %s engine', async (engine) => {
      const f = await createForest({ dimensions: 2, shingleSize: 2, numberOfTrees: 4, sampleSize: 32, randomSeed: 1 });
      f.process(Float64Array.from({ length: 2 * 500 }, (_, i) => (i * 37) % 23));
      good = f.snapshot();
      const cases: Array<[string, Uint8Array, RegExp]> = [
        ['empty', new Uint8Array(0), /not an rcf-stream forest snapshot/],
        ['wrong magic', (() => { const b = good.slice(); b[0] = 0; return b; })(), /bad magic/],
        ['future version', resealed((() => { const b = good.slice(); b[4] = 9; return b; })()), /unsupported snapshot format version 9/],
        ['truncated', good.subarray(0, good.length - 100), /truncated/],
        ['one flipped bit', (() => { const b = good.slice(); b[good.length >> 1]! ^= 4; return b; })(), /checksum mismatch/],
        ['trailing garbage', (() => { const b = new Uint8Array(good.length + 3); b.set(good); return b; })(), /truncated or has trailing data/],
        ['bad config, valid checksum', resealed((() => { const b = good.slice(); b[16] = 0; b[17] = 0; return b; })()), /configuration is out of range/],
      ];
      for (const [name, bytes, message] of cases) {
        await expect(restoreForest(bytes, { engine }), name).rejects.toThrow(message);
        await expect(restoreForest(bytes, { engine }), name).rejects.toBeInstanceOf(SnapshotError);
      }
    });

    it('never crashes or yields a broken model from resealed random corruption', async () => {
      const r = mulberry32(77);
      let rejected = 0;
      let accepted = 0;
      for (let trial = 0; trial < 300; trial++) {
        const b = good.slice();
        const flips = 1 + Math.floor(r() * 3);
        for (let k = 0; k < flips; k++) b[48 + Math.floor(r() * (b.length - 52))]! ^= 1 << Math.floor(r() * 8);
        const bytes = resealed(b);
        for (const engine of ENGINES) {
          try {
            const f = await restoreForest(bytes, { engine });
            sound(f); // a corruption that still describes a valid model must be a sound one
            f.update([1, 2]);
            sound(f);
            f.dispose();
            accepted++;
          } catch (e) {
            expect(e).toBeInstanceOf(SnapshotError);
            rejected++;
          }
        }
      }
      expect(rejected).toBeGreaterThan(0);
      console.log(`resealed corruption: ${rejected} rejected, ${accepted} accepted as valid models`);
    });
  });
});
