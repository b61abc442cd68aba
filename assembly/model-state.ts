// Engine-neutral model state as i32 words (layout: src/forest/model-state.ts), the twin of
// src/engine/ts/model-state.ts. Trees are walked in preorder, so the words depend only on
// the model: both engines export the same words for the same model.
import { RandomCutForest } from './random-cut-forest';
import { NONE, RandomCutTree } from './random-cut-tree';

const MODEL_STATE_VERSION = 1;

let words = new StaticArray<i32>(0);
let wordCount = 0;

@inline function put(w: i32): void {
  unchecked(words[wordCount++] = w);
}

/** Visits the tree in preorder (left before right), calling back per node code. */
function preorder(tree: RandomCutTree, stack: StaticArray<i32>, visit: (tree: RandomCutTree, code: i32) => void): void {
  if (tree.root == NONE) return;
  let top = 0;
  unchecked(stack[top++] = tree.root);
  while (top > 0) {
    const c = unchecked(stack[--top]);
    visit(tree, c);
    if (c >= 0) {
      unchecked(stack[top++] = tree.right(c));
      unchecked(stack[top++] = tree.left(c));
    }
  }
}

// State shared with the visitors (closures cannot capture locals in AssemblyScript).
let pointIndex = new StaticArray<i32>(0);
let pointCount = 0;
let exportForest: RandomCutForest | null = null;
let leafOrdinal = new StaticArray<i32>(0);
let leafCount = 0;

function numberPoints(tree: RandomCutTree, c: i32): void {
  if (c >= 0) return;
  const forest = changetype<RandomCutForest>(exportForest);
  const slot = unchecked(tree.leafPoint[~c]);
  if (unchecked(pointIndex[slot]) != -1) return;
  unchecked(pointIndex[slot] = pointCount++);
  const D = forest.dimensions;
  for (let d = 0; d < D; d++) put(reinterpret<i32>(unchecked(forest.store.coords[slot * D + d])));
}

function numberLeaves(tree: RandomCutTree, c: i32): void {
  if (c < 0) unchecked(leafOrdinal[~c] = leafCount++);
}

let nodeCount = 0;

function emitNode(tree: RandomCutTree, c: i32): void {
  nodeCount++;
  if (c >= 0) {
    put(0);
    put(<i32>unchecked(tree.cutDim[c]));
    put(reinterpret<i32>(tree.cutValue(c)));
  } else {
    put(1);
    put(unchecked(pointIndex[unchecked(tree.leafPoint[~c])]));
  }
}

/** Writes the forest's state to the word buffer; returns its address (length: stateLength()). */
export function exportState(forest: RandomCutForest): usize {
  const D = forest.dimensions;
  const T = forest.trees.length;
  const S = forest.sampleSize;
  const bound = 4 + D + forest.store.capacity * D + T * (6 + 2 * S + 3 * (2 * S));
  if (words.length < bound) words = new StaticArray<i32>(bound);
  wordCount = 0;
  put(MODEL_STATE_VERSION);
  put(<i32>(forest.updates >> 32));
  put(<i32>forest.updates);
  for (let i = 0; i < D; i++) put(reinterpret<i32>(unchecked(forest.shingle[i])));
  exportForest = forest;
  pointIndex = new StaticArray<i32>(forest.store.capacity);
  for (let i = 0; i < pointIndex.length; i++) unchecked(pointIndex[i] = -1);
  pointCount = 0;
  const countAt = wordCount;
  put(0); // point count, filled below
  const stack = new StaticArray<i32>(2 * S + 2);
  for (let t = 0; t < T; t++) preorder(unchecked(forest.trees[t]), stack, numberPoints);
  unchecked(words[countAt] = pointCount);
  leafOrdinal = new StaticArray<i32>(S);
  for (let t = 0; t < T; t++) {
    const tree = unchecked(forest.trees[t]);
    const sampler = unchecked(forest.samplers[t]);
    put(<i32>(tree.seed >> 32));
    put(<i32>tree.seed);
    put(<i32>(sampler.seed >> 32));
    put(<i32>sampler.seed);
    leafCount = 0;
    preorder(tree, stack, numberLeaves);
    put(sampler.size);
    for (let i = 0; i < sampler.size; i++) put(reinterpret<i32>(unchecked(sampler.weight[i])));
    for (let i = 0; i < sampler.size; i++) put(unchecked(leafOrdinal[unchecked(sampler.ref[i])]));
    const nodesAt = wordCount;
    put(0); // node count, filled below
    nodeCount = 0;
    preorder(tree, stack, emitNode);
    unchecked(words[nodesAt] = nodeCount);
  }
  exportForest = null;
  return changetype<usize>(words);
}

export function stateLength(): i32 {
  return wordCount;
}

/** Rebuilds `forest` (fresh, same configuration) from words validated by the host. */
export function importState(forest: RandomCutForest, src: usize, length: i32): void {
  const D = forest.dimensions;
  const S = forest.sampleSize;
  let p: usize = src + 4; // skip the version
  const hi = <i64>load<i32>(p);
  const lo = <i64>load<u32>(p + 4);
  forest.updates = (hi << 32) | lo;
  p += 8;
  for (let i = 0; i < D; i++) {
    unchecked(forest.shingle[i] = load<f32>(p));
    p += 4;
  }
  const points = load<i32>(p);
  p += 4;
  const pointsAt = p;
  p += <usize>(points * D) << 2;
  const slotOf = new StaticArray<i32>(points);
  for (let i = 0; i < points; i++) unchecked(slotOf[i] = -1);
  const scratch = new StaticArray<f32>(D);
  const codes = new StaticArray<i32>(2 * S);
  const open = new StaticArray<i32>(2 * S);
  const leafSlots = new StaticArray<i32>(S);
  for (let t = 0; t < forest.trees.length; t++) {
    const tree = unchecked(forest.trees[t]);
    const sampler = unchecked(forest.samplers[t]);
    tree.seed = (<i64>load<i32>(p) << 32) | <i64>load<u32>(p + 4);
    sampler.seed = (<i64>load<i32>(p + 8) << 32) | <i64>load<u32>(p + 12);
    p += 16;
    const size = load<i32>(p);
    p += 4;
    const weightsAt = p;
    p += <usize>size << 2;
    const ordinalsAt = p;
    p += <usize>size << 2;
    const count = load<i32>(p);
    p += 4;
    let leaves = 0;
    for (let i = 0; i < count; i++) {
      if (load<i32>(p) == 0) {
        unchecked(codes[i] = tree.restoreInternal(load<i32>(p + 4), load<f32>(p + 8)));
        p += 12;
      } else {
        const index = load<i32>(p + 4);
        if (unchecked(slotOf[index]) == -1) {
          memory.copy(changetype<usize>(scratch), pointsAt + (<usize>(index * D) << 2), <usize>D << 2);
          unchecked(slotOf[index] = forest.store.add(scratch));
        }
        const leaf = tree.restoreLeaf(unchecked(slotOf[index]));
        unchecked(leafSlots[leaves++] = leaf);
        unchecked(codes[i] = ~leaf);
        p += 8;
      }
    }
    tree.linkPreorder(codes, count, open);
    for (let i = 0; i < size; i++) {
      const leaf = unchecked(leafSlots[load<i32>(ordinalsAt + (<usize>i << 2))]);
      unchecked(tree.leafMass[leaf] += 1);
      sampler.push(load<f32>(weightsAt + (<usize>i << 2)), leaf);
    }
  }
  assert(p == src + (<usize>length << 2), 'model state length');
}
