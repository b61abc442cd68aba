import type { RandomCutForest } from './random-cut-forest.js';
import { NONE, WIDE } from './random-cut-tree.js';

/**
 * Structural invariants of a forest, for tests: exact boxes, cuts that separate children,
 * leaf masses equal to sampler multiplicities, the heap property, and point-store
 * reference counts equal to the leaves that hold each point (so no slot leaks).
 * Returns the violations found (empty when sound).
 */
export function checkInvariants(forest: RandomCutForest): string[] {
  const errors: string[] = [];
  const D = forest.dimensions;
  const store = forest.store;
  const refs = new Map<number, number>();
  forest.trees.forEach((tree, t) => {
    const sampler = forest.samplers[t]!;
    for (let i = 1; i < sampler.size; i++) {
      if (sampler.weight[(i - 1) >> 1]! < sampler.weight[i]!) errors.push(`tree ${t}: heap order broken at ${i}`);
    }
    const multiplicity = new Map<number, number>();
    for (let i = 0; i < sampler.size; i++) multiplicity.set(sampler.ref[i]!, (multiplicity.get(sampler.ref[i]!) ?? 0) + 1);
    const lo = (c: number, d: number) => (c < 0 ? store.coords[tree.leafPoint[~c]! * D + d]! : tree.box[2 * c * D + d]!);
    const hi = (c: number, d: number) => (c < 0 ? store.coords[tree.leafPoint[~c]! * D + d]! : tree.box[(2 * c + 1) * D + d]!);
    let leaves = 0;
    let internal = 0;
    let mass = 0;
    const seenPoints = new Set<string>();
    const stack = tree.root === NONE ? [] : [tree.root];
    while (stack.length > 0) {
      const c = stack.pop()!;
      if (c < 0) {
        const l = ~c;
        leaves++;
        mass += tree.leafMass[l]!;
        if (tree.leafMass[l] !== multiplicity.get(l)) {
          errors.push(`tree ${t}: leaf ${l} mass ${tree.leafMass[l]} but ${multiplicity.get(l) ?? 0} sampler entries`);
        }
        const p = tree.leafPoint[l]!;
        refs.set(p, (refs.get(p) ?? 0) + 1);
        const key = Array.from(store.coords.subarray(p * D, p * D + D)).join(',');
        if (seenPoints.has(key)) errors.push(`tree ${t}: two leaves hold the point (${key})`);
        seenPoints.add(key);
        continue;
      }
      internal++;
      const l = tree.left(c);
      const r = tree.right(c);
      const d = tree.cutDim[c]!;
      const cut = tree.cutValue(c);
      if (!(hi(l, d) <= cut) || !(lo(r, d) > cut)) errors.push(`tree ${t}: node ${c} cut does not separate its children`);
      for (let k = 0; k < D; k++) {
        if (tree.box[2 * c * D + k] !== Math.min(lo(l, k), lo(r, k)) || tree.box[(2 * c + 1) * D + k] !== Math.max(hi(l, k), hi(r, k))) {
          errors.push(`tree ${t}: node ${c} box is not the union of its children's boxes`);
          break;
        }
      }
      if (D >= WIDE) {
        // The cached range sum: the score ascent's denominator, summed in dimension order.
        let range = 0;
        for (let k = 0; k < D; k++) range += Math.fround(tree.box[(2 * c + 1) * D + k]! - tree.box[2 * c * D + k]!);
        if (tree.boxRange[c] !== range) errors.push(`tree ${t}: node ${c} cached range sum is stale`);
      }
      stack.push(l, r);
    }
    if (mass !== sampler.size) errors.push(`tree ${t}: leaf masses sum to ${mass}, sampler holds ${sampler.size}`);
    if (leaves > 0 && internal !== leaves - 1) errors.push(`tree ${t}: ${internal} internal nodes for ${leaves} leaves`);
    if (multiplicity.size !== leaves) errors.push(`tree ${t}: sampler refers to ${multiplicity.size} leaves, tree has ${leaves}`);
  });
  let inUse = 0;
  for (let p = 0; p < store.slotCapacity; p++) {
    const rc = store.refCount[p]!;
    const expected = refs.get(p) ?? 0;
    if (expected > 0 && rc !== expected) errors.push(`point ${p}: refCount ${rc}, held by ${expected} leaves`);
    if (expected > 0) inUse++;
  }
  if (inUse !== store.slotsInUse) errors.push(`point store: ${store.slotsInUse} slots in use, ${inUse} referenced (leak)`);
  return errors;
}
