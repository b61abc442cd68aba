// Structural invariants of a forest, for tests (the twin of src/engine/ts/invariants.ts):
// returns 0 when sound, else a code naming the first violation found.
import { RandomCutForest } from './random-cut-forest';
import { NONE, RandomCutTree, WIDE } from './random-cut-tree';

export const HEAP_ORDER = 1;
export const LEAF_MASS = 2;
export const CUT_SEPARATION = 3;
export const BOX_UNION = 4;
export const TREE_MASS = 5;
export const NODE_COUNT = 6;
export const POINT_REFCOUNT = 7;
export const POINT_LEAK = 8;
export const RANGE_CACHE = 9;

function lo(tree: RandomCutTree, coords: StaticArray<f32>, D: i32, c: i32, d: i32): f32 {
  return c < 0 ? unchecked(coords[unchecked(tree.leafPoint[~c]) * D + d]) : unchecked(tree.box[2 * c * D + d]);
}

function hi(tree: RandomCutTree, coords: StaticArray<f32>, D: i32, c: i32, d: i32): f32 {
  return c < 0 ? unchecked(coords[unchecked(tree.leafPoint[~c]) * D + d]) : unchecked(tree.box[(2 * c + 1) * D + d]);
}

export function checkInvariants(forest: RandomCutForest): i32 {
  const D = forest.dimensions;
  const store = forest.store;
  const coords = store.coords;
  const leafRefs = new StaticArray<i32>(store.capacity);
  for (let t = 0; t < forest.trees.length; t++) {
    const tree = forest.trees[t];
    const sampler = forest.samplers[t];
    for (let i = 1; i < sampler.size; i++) {
      if (sampler.weight[(i - 1) >> 1] < sampler.weight[i]) return HEAP_ORDER;
    }
    const multiplicity = new StaticArray<i32>(tree.capacity);
    for (let i = 0; i < sampler.size; i++) multiplicity[sampler.ref[i]] += 1;
    let leaves = 0;
    let internal = 0;
    let mass = 0;
    const stack = new Array<i32>();
    if (tree.root != NONE) stack.push(tree.root);
    while (stack.length > 0) {
      const c = stack.pop();
      if (c < 0) {
        const l = ~c;
        leaves++;
        mass += tree.leafMass[l];
        if (tree.leafMass[l] != multiplicity[l]) return LEAF_MASS;
        leafRefs[tree.leafPoint[l]] += 1;
        continue;
      }
      internal++;
      const l = tree.left(c);
      const r = tree.right(c);
      const d = <i32>tree.cutDim[c];
      const cut = tree.cutValue(c);
      if (!(hi(tree, coords, D, l, d) <= cut) || !(lo(tree, coords, D, r, d) > cut)) return CUT_SEPARATION;
      for (let k = 0; k < D; k++) {
        if (tree.box[2 * c * D + k] != min(lo(tree, coords, D, l, k), lo(tree, coords, D, r, k))) return BOX_UNION;
        if (tree.box[(2 * c + 1) * D + k] != max(hi(tree, coords, D, l, k), hi(tree, coords, D, r, k))) return BOX_UNION;
      }
      if (D >= WIDE) {
        // The cached range sum: the score ascent's denominator, summed in dimension order.
        let range: f64 = 0;
        for (let k = 0; k < D; k++) range += <f64>(tree.box[(2 * c + 1) * D + k] - tree.box[2 * c * D + k]);
        if (tree.boxRange[c] != range) return RANGE_CACHE;
      }
      stack.push(l);
      stack.push(r);
    }
    if (mass != sampler.size) return TREE_MASS;
    if (leaves > 0 && internal != leaves - 1) return NODE_COUNT;
  }
  let inUse = 0;
  for (let p = 0; p < store.capacity; p++) {
    if (leafRefs[p] > 0) {
      if (store.refCount[p] != leafRefs[p]) return POINT_REFCOUNT;
      inUse++;
    }
  }
  if (inUse != store.slotsInUse) return POINT_LEAK;
  return 0;
}
