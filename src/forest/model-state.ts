import type { ForestConfig } from './options.js';
import { RcfStreamError } from '../util/errors.js';

/**
 * Engine-neutral model state: a flat list of i32 words that both engines export and import.
 * f32 values travel as their bits, 64-bit integers as (hi, lo) words. Layout:
 *
 *   version
 *   N (hi, lo)                       total updates
 *   D words                          shingle buffer (f32 bits)
 *   P, then P × D words              distinct stored points (f32 bits), numbered in order
 *                                    of first appearance over the trees in preorder
 *   per tree t = 0..T-1:
 *     treeSeed (hi, lo), samplerSeed (hi, lo)
 *     size, size × weight (f32 bits), size × leaf ordinal   the sampler heap, in heap order
 *     nodeCount, then nodes in preorder (left before right):
 *       internal: 0, cutDim, cutValue (f32 bits)
 *       leaf:     1, point index
 *
 * Leaf masses, boxes, node numbering and free lists are derived on import; they cannot
 * change a later result (rcf-algorithm.md §9).
 */
export const MODEL_STATE_VERSION = 1;

export class ModelStateError extends RcfStreamError {
  override name = 'ModelStateError';
  readonly code = 'MODEL_STATE_INVALID';
}

/**
 * Checks words against a configuration so that importing them can neither crash an engine
 * nor produce a model that breaks the invariants (every leaf reachable by lookup of its
 * own point, heap order, masses from the sampler). Throws ModelStateError naming the fault.
 */
export function validateModelState(config: ForestConfig, words: Int32Array): void {
  const fail = (msg: string): never => {
    throw new ModelStateError(`invalid model state: ${msg}`);
  };
  const D = config.dimensions;
  const S = config.sampleSize;
  const f32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  let p = 0;
  const need = (n: number, what: string): void => {
    if (p + n > words.length) fail(`truncated in ${what}`);
  };
  need(3 + D + 1, 'header');
  if (words[p++] !== MODEL_STATE_VERSION) fail(`model state version ${words[0]}, expected ${MODEL_STATE_VERSION}`);
  const hi = words[p++]!;
  const lo = words[p++]! >>> 0;
  if (hi < 0 || hi >= 2 ** 21) fail('update count out of range');
  const updates = hi * 4294967296 + lo;
  for (let i = 0; i < D; i++) if (!Number.isFinite(f32[p++]!)) fail('non-finite shingle value');
  const P = words[p++]!;
  if (P < 0 || P > config.numberOfTrees * S) fail(`point count ${P}`);
  need(P * D, 'points');
  const pointsAt = p;
  for (let i = 0; i < P * D; i++) {
    const v = f32[p++]!;
    if (!(Math.abs(v) <= 1e38) || Object.is(v, -0)) fail('invalid stored coordinate');
  }
  const used = new Uint8Array(P);
  const coord = (point: number, d: number): number => f32[pointsAt + point * D + d]!;
  for (let t = 0; t < config.numberOfTrees; t++) {
    need(5, `tree ${t}`);
    p += 4;
    const size = words[p++]!;
    if (size < 0 || size > S) fail(`tree ${t}: sampler size ${size}`);
    if (updates >= config.shingleSize && size === 0) fail(`tree ${t}: empty sampler after updates`);
    need(2 * size + 1, `tree ${t} sampler`);
    const weightsAt = p;
    for (let i = 0; i < size; i++) {
      const w = f32[p + i]!;
      if (Number.isNaN(w)) fail(`tree ${t}: NaN weight`);
      if (i > 0 && f32[weightsAt + ((i - 1) >> 1)]! < w) fail(`tree ${t}: sampler heap order broken at ${i}`);
    }
    p += size;
    const ordinalsAt = p;
    p += size;
    const nodeCount = words[p++]!;
    if (nodeCount < 0 || nodeCount > 2 * S - 1) fail(`tree ${t}: node count ${nodeCount}`);
    if ((size === 0) !== (nodeCount === 0)) fail(`tree ${t}: sampler and tree disagree on emptiness`);
    // Parse the preorder into arrays, checking shape as we go.
    const kind: number[] = [];
    const a: number[] = [];
    const cut: number[] = [];
    let leaves = 0;
    let pending = nodeCount > 0 ? 1 : 0; // child positions still to fill
    for (let i = 0; i < nodeCount; i++) {
      if (pending === 0) fail(`tree ${t}: preorder has nodes after the tree is complete`);
      need(2, `tree ${t} nodes`);
      const k = words[p]!;
      if (k === 0) {
        need(3, `tree ${t} nodes`);
        const d = words[p + 1]!;
        if (d < 0 || d >= D) fail(`tree ${t}: cut dimension ${d}`);
        if (!Number.isFinite(f32[p + 2]!)) fail(`tree ${t}: non-finite cut`);
        kind.push(0);
        a.push(d);
        cut.push(f32[p + 2]!);
        p += 3;
        pending += 1;
      } else if (k === 1) {
        const point = words[p + 1]!;
        if (point < 0 || point >= P) fail(`tree ${t}: point index ${point}`);
        used[point] = 1;
        kind.push(1);
        a.push(point);
        cut.push(0);
        leaves++;
        p += 2;
        pending -= 1;
      } else fail(`tree ${t}: node kind ${k}`);
    }
    if (pending !== 0) fail(`tree ${t}: preorder ends with ${pending} missing children`);
    if (leaves > S) fail(`tree ${t}: ${leaves} leaves exceed sample size ${S}`);
    const multiplicity = new Int32Array(leaves);
    for (let i = 0; i < size; i++) {
      const o = words[ordinalsAt + i]!;
      if (o < 0 || o >= leaves) fail(`tree ${t}: sampler refers to leaf ${o}`);
      multiplicity[o]!++;
    }
    for (let l = 0; l < leaves; l++) if (multiplicity[l] === 0) fail(`tree ${t}: leaf ${l} has no sampler entry`);
    // Every cut must separate its subtrees exactly (so every lookup finds its own leaf).
    const boxMin = new Float64Array(nodeCount * D);
    const boxMax = new Float64Array(nodeCount * D);
    const rightOf = new Int32Array(nodeCount).fill(-1);
    // In preorder a node's left child follows it; its right child comes once the left subtree closes.
    {
      const open: number[] = [];
      for (let i = 0; i < nodeCount; i++) {
        if (i > 0) {
          const top = open[open.length - 1]!;
          if (rightOf[top] === -2) {
            rightOf[top] = i;
            open.pop();
          } else rightOf[top] = -2;
        }
        if (kind[i] === 0) open.push(i);
      }
    }
    for (let i = nodeCount - 1; i >= 0; i--) {
      if (kind[i] === 1) {
        for (let d = 0; d < D; d++) boxMin[i * D + d] = boxMax[i * D + d] = coord(a[i]!, d);
        continue;
      }
      const l = i + 1;
      const r = rightOf[i]!;
      const d = a[i]!;
      if (!(boxMax[l * D + d]! <= cut[i]!) || !(boxMin[r * D + d]! > cut[i]!)) fail(`tree ${t}: cut does not separate node ${i}'s children`);
      for (let e = 0; e < D; e++) {
        boxMin[i * D + e] = Math.min(boxMin[l * D + e]!, boxMin[r * D + e]!);
        boxMax[i * D + e] = Math.max(boxMax[l * D + e]!, boxMax[r * D + e]!);
      }
    }
  }
  for (let i = 0; i < P; i++) if (!used[i]) fail(`point ${i} is held by no leaf`);
  if (p !== words.length) fail(`${words.length - p} trailing words`);
}
