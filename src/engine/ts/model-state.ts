import { NONE } from './random-cut-tree.js';
import { RandomCutForest } from './random-cut-forest.js';
import type { ForestConfig } from '../../forest/options.js';
import { MODEL_STATE_VERSION } from '../../forest/model-state.js';

/**
 * Exports the forest's state as engine-neutral i32 words (layout in src/forest/model-state.ts).
 * Trees are walked in preorder, so the words depend only on the model, never on slot
 * numbers or free lists: the WASM kernel produces the same words for the same model.
 */
export function exportModelState(forest: RandomCutForest): Int32Array {
  const D = forest.dimensions;
  const store = forest.store;
  const out: number[] = [MODEL_STATE_VERSION];
  const n = forest.updates;
  out.push(Math.floor(n / 4294967296) | 0, n >>> 0 | 0);
  const f32 = new Float32Array(1);
  const bits = new Int32Array(f32.buffer);
  for (let i = 0; i < D; i++) {
    f32[0] = forest.shingle[i]!;
    out.push(bits[0]!);
  }
  // Points first: numbered in order of first appearance over trees in preorder.
  const pointIndex = new Int32Array(store.slotCapacity).fill(-1);
  const points: number[] = [];
  const preorders: number[][] = [];
  for (const tree of forest.trees) {
    const order: number[] = [];
    const stack = tree.root === NONE ? [] : [tree.root];
    while (stack.length > 0) {
      const c = stack.pop()!;
      order.push(c);
      if (c >= 0) stack.push(tree.right(c), tree.left(c));
      else {
        const slot = tree.leafPoint[~c]!;
        if (pointIndex[slot] === -1) {
          pointIndex[slot] = points.length / D;
          for (let d = 0; d < D; d++) {
            f32[0] = store.coords[slot * D + d]!;
            points.push(bits[0]!);
          }
        }
      }
    }
    preorders.push(order);
  }
  out.push(points.length / D);
  for (const w of points) out.push(w);
  forest.trees.forEach((tree, t) => {
    const sampler = forest.samplers[t]!;
    out.push(tree.seed[0]!, tree.seed[1]!, sampler.seed[0]!, sampler.seed[1]!);
    const order = preorders[t]!;
    const leafOrdinal = new Int32Array(tree.capacity).fill(-1);
    let leaves = 0;
    for (const c of order) if (c < 0) leafOrdinal[~c] = leaves++;
    out.push(sampler.size);
    for (let i = 0; i < sampler.size; i++) {
      f32[0] = sampler.weight[i]!;
      out.push(bits[0]!);
    }
    for (let i = 0; i < sampler.size; i++) out.push(leafOrdinal[sampler.ref[i]!]!);
    out.push(order.length);
    for (const c of order) {
      if (c >= 0) {
        out.push(0, tree.cutDim[c]!);
        f32[0] = tree.cutValue(c);
        out.push(bits[0]!);
      } else {
        out.push(1, pointIndex[tree.leafPoint[~c]!]!);
      }
    }
  });
  return Int32Array.from(out);
}

/** Builds a forest from words already checked by validateModelState. */
export function importModelState(config: ForestConfig, words: Int32Array): RandomCutForest {
  const forest = new RandomCutForest(config);
  const D = forest.dimensions;
  const f32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  let p = 1;
  forest.updates = words[p]! * 4294967296 + (words[p + 1]! >>> 0);
  p += 2;
  for (let i = 0; i < D; i++) forest.shingle[i] = f32[p++]!;
  const pointCount = words[p++]!;
  const pointsAt = p;
  p += pointCount * D;
  const store = forest.store;
  const slotOf = new Int32Array(pointCount).fill(-1);
  const slotFor = (index: number): number => {
    if (slotOf[index] === -1) slotOf[index] = store.add(f32, pointsAt + index * D);
    return slotOf[index]!;
  };
  for (let t = 0; t < forest.trees.length; t++) {
    const tree = forest.trees[t]!;
    const sampler = forest.samplers[t]!;
    tree.seed[0] = words[p++]!;
    tree.seed[1] = words[p++]!;
    sampler.seed[0] = words[p++]!;
    sampler.seed[1] = words[p++]!;
    const size = words[p++]!;
    const weightsAt = p;
    p += size;
    const ordinalsAt = p;
    p += size;
    const nodeCount = words[p++]!;
    const leafSlots: number[] = [];
    const codes: number[] = [];
    for (let i = 0; i < nodeCount; i++) {
      if (words[p] === 0) {
        codes.push(tree.restoreInternal(words[p + 1]!, f32[p + 2]!));
        p += 3;
      } else {
        const leaf = tree.restoreLeaf(slotFor(words[p + 1]!));
        leafSlots.push(leaf);
        codes.push(~leaf);
        p += 2;
      }
    }
    tree.linkPreorder(codes);
    for (let i = 0; i < size; i++) {
      const leaf = leafSlots[words[ordinalsAt + i]!]!;
      tree.leafMass[leaf]!++;
      sampler.push(f32[weightsAt + i]!, leaf);
    }
  }
  // Points added for the import but referenced by no leaf cannot exist (validated), so
  // every slot now has its reference count from the leaves.
  return forest;
}
