import { describe, expect, it } from 'vitest';
import { createForestSync } from '../../../src/index.js';
import { resolveOptions } from '../../../src/forest/options.js';
import { RandomCutForest } from '../../../src/engine/ts/random-cut-forest.js';
import { lnTable } from '../../../src/engine/ts/ln.js';
import type { RandomCutTree } from '../../../src/engine/ts/random-cut-tree.js';
import { mulberry32 } from '../../../src/generate/temperature.js';

/**
 * The per-tree score of rcf-algorithm.md §7.1 written out plainly: a lookup, boxes rebuilt
 * from the leaves below each ancestor, below/above/range as full passes over every dimension
 * in order. Both engines' wide ascents (D >= 8: outside lists, four coordinates per
 * iteration, two levels per pass) must give the same f64, bit for bit. The differential suite
 * cannot see a mistake both engines share; this can.
 */
interface Walk {
  score: number;
  levels: number;
  reachedRoot: boolean;
  seen: boolean;
}

function boxOf(tree: RandomCutTree, coords: Float32Array, node: number, D: number): { min: number[]; max: number[] } {
  if (node < 0) {
    const p = tree.leafPoint[~node]! * D;
    const v = Array.from({ length: D }, (_, d) => coords[p + d]!);
    return { min: v, max: [...v] };
  }
  const l = boxOf(tree, coords, tree.left(node), D);
  const r = boxOf(tree, coords, tree.right(node), D);
  return {
    min: l.min.map((v, d) => Math.min(v, r.min[d]!)),
    max: l.max.map((v, d) => Math.max(v, r.max[d]!)),
  };
}

function referenceTreeScore(tree: RandomCutTree, coords: Float32Array, q: Float32Array, M: number, ln: Float64Array): Walk {
  const D = tree.dimensions;
  const LN2 = Math.LN2;
  const path: number[] = [];
  let node = tree.root;
  while (node >= 0) {
    path.push(node);
    node = q[tree.cutDim[node]!]! <= tree.cutValue(node) ? tree.left(node) : tree.right(node);
  }
  const h = path.length;
  const leaf = ~node;
  const p = tree.leafPoint[leaf]! * D;
  let same = true;
  for (let d = 0; d < D; d++) if (coords[p + d] !== q[d]) same = false;
  if (same) {
    const m = tree.leafMass[leaf]!;
    const s = (1.0 - m / (2.0 * M)) * (1.0 / (h + ln[m + 1]! / LN2));
    return { score: (s * ln[M + 1]!) / LN2, levels: 0, reachedRoot: false, seen: true };
  }
  let s = 1.0 / (h + 1);
  let levels = 0;
  let reachedRoot = false;
  for (let j = h - 1; j >= 0; j--) {
    const box = boxOf(tree, coords, path[j]!, D);
    let below = 0;
    for (let d = 0; d < D; d++) below += Math.max(Math.fround(box.min[d]! - q[d]!), 0);
    let above = 0;
    for (let d = 0; d < D; d++) above += Math.max(Math.fround(q[d]! - box.max[d]!), 0);
    const out = above + below;
    if (out === 0) break;
    let range = 0;
    for (let d = 0; d < D; d++) range += Math.fround(box.max[d]! - box.min[d]!);
    const pr = out / (range + out);
    s = pr * (1.0 / (j + 1)) + (1.0 - pr) * s;
    levels++;
    if (j === 0) reachedRoot = true;
  }
  return { score: (s * ln[M + 1]!) / LN2, levels, reachedRoot, seen: false };
}

const CONFIGS = [
  { dimensions: 8, shingleSize: 1 },
  { dimensions: 9, shingleSize: 1 },
  { dimensions: 10, shingleSize: 1 },
  { dimensions: 11, shingleSize: 1 },
  { dimensions: 13, shingleSize: 1 },
  { dimensions: 5, shingleSize: 8 },
];

describe('wide score ascent against the plain §7.1 score', () => {
  for (const shape of CONFIGS) {
    const D = shape.dimensions * shape.shingleSize;
    it(`D = ${D} (${shape.dimensions} x shingle ${shape.shingleSize}): every tree, both engines, bit for bit`, () => {
      const options = { ...shape, numberOfTrees: 12, sampleSize: 64, randomSeed: 5 + D };
      const ts = new RandomCutForest(resolveOptions({ ...options, engine: 'ts' }));
      const wasm = createForestSync({ ...options, engine: 'wasm' });
      const r = mulberry32(1000 + D);
      const b = shape.dimensions;
      const level = new Array<number>(b).fill(0);
      const records: number[][] = [];
      const next = (i: number): number[] => {
        // A random walk per dimension with spikes, so that queries fall outside many boxes;
        // runs of 12 records repeat those 40 before, so that some queries (whole shingles
        // too) are seen points.
        if (i > 50 && i % 60 < 12) return [...records[i - 40]!];
        for (let d = 0; d < b; d++) level[d]! += r() - 0.5;
        return level.map((v) => (r() < 0.03 ? v + 40 * (r() - 0.5) : v));
      };
      for (let i = 0; i < 700; i++) {
        const x = next(i);
        records.push(x);
        ts.update(x);
        wasm.update(x);
      }
      // The logarithms of §2.3 (checked against their anchors in ln.test.ts).
      const ln = lnTable(options.sampleSize + 1);
      let queries = 0;
      let reachedRoot = 0;
      let seen = 0;
      let deepest = 0;
      for (let i = 700; i < 900; i++) {
        const x = next(i);
        // The candidate shingle: the last k - 1 records, then x (f32, -0 as +0).
        const window = [...records.slice(records.length - (shape.shingleSize - 1)), x];
        const q = Float32Array.from(window.flat(), (v) => Math.fround(v) + 0);
        let acc = 0;
        for (let t = 0; t < ts.trees.length; t++) {
          const walk = referenceTreeScore(ts.trees[t]!, ts.store.coords, q, ts.samplers[t]!.size, ln);
          acc = t === 0 ? walk.score : acc + walk.score;
          if (walk.reachedRoot) reachedRoot++;
          if (walk.seen) seen++;
          deepest = Math.max(deepest, walk.levels);
        }
        const expected = acc / ts.trees.length;
        expect(ts.score(x)).toBe(expected);
        expect(wasm.score(x)).toBe(expected);
        queries++;
        records.push(x);
        ts.update(x);
        wasm.update(x);
      }
      wasm.dispose();
      // The walks covered what the optimised ascents special-case.
      expect(queries).toBe(200);
      expect(reachedRoot).toBeGreaterThan(0);
      expect(seen).toBeGreaterThan(0);
      expect(deepest).toBeGreaterThanOrEqual(5);
    });
  }
});
