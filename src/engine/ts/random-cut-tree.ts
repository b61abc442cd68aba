import type { JavaRandom } from './java-random.js';
import { LN2 } from './ln.js';
import type { PointStore } from './point-store.js';

/** Node codes: internal nodes are 0..S-2; a leaf slot l is coded ~l (negative). */
export const NONE = 0x7fffffff;

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** The largest f32 strictly below x (x finite, not the lowest f32). */
function nextDown(x: number): number {
  if (x === 0) return -1.401298464324817e-45;
  f32[0] = x;
  i32[0] += x > 0 ? -1 : 1;
  return f32[0]!;
}

/**
 * From this many dimensions on, trees cache each box's range sum and the score ascent visits
 * only the coordinates outside each box (the kernel's WIDE).
 */
export const WIDE = 8;

/**
 * The random cut's per-dimension gaps from its first pass, read again by the second (one
 * load per dimension instead of three and two selects); shared, as trees run one at a time.
 */
let cutGaps = new Float64Array(64);

/**
 * The random cut's total per level of one insert (D >= WIDE): the f64 sum, in dimension
 * order, of fround(max - min) over the box ∪ p, which is exactly the range sum the new node
 * and every extended ancestor will hold, so they take it from here instead of adding again.
 */
let levelTotals = new Float64Array(257);

/** 1/(j+1) for tree depths: the same values as the division, one load instead. */
const INVERSE_DEPTH = new Float64Array(4097);
for (let j = 0; j < 4097; j++) INVERSE_DEPTH[j] = 1.0 / (j + 1);

/**
 * A random cut tree (rcf-algorithm.md §6): struct-of-arrays internal nodes with cached
 * bounding boxes, leaves that reference points in the forest's PointStore, index free
 * lists, and no parent pointers (a root-to-leaf path is kept while walking instead).
 */
export class RandomCutTree {
  /**
   * Internal node n as two words at [2n]: cutValue (f32, read through nodeF32), then both
   * children packed as i16 (left low, right high; leaves ~slot, so S <= 4096 fits). Eight
   * bytes per node keep the trees' hot part small. A free node's second word is the
   * free-list link.
   */
  readonly node: Int32Array;
  private readonly nodeF32: Float32Array;
  /** Cut dimension of node n. */
  readonly cutDim: Uint16Array;
  /** Bounding box of node n at [2Dn]: D minima, then D maxima. */
  readonly box: Float32Array;
  /**
   * D >= WIDE: per node, the f64 sum over d (in dimension order) of fround(max - min), kept
   * with the box, so the score ascent visits only the coordinates where q lies outside.
   */
  readonly boxRange: Float64Array;
  /** Scratch: dimensions where q is still outside the current ancestor's box (D >= WIDE). */
  readonly outside: Int32Array;
  /** Set by randomCut: the box holds p. */
  private boxHoldsPoint = false;
  readonly leafPoint: Int32Array; // doubles as the free-list link of a free leaf
  readonly leafMass: Int32Array;
  root = NONE;
  private freeNode = 0;
  private freeLeaf = 0;
  /** Current tree seed as a Java long (hi32, lo32). */
  readonly seed = new Int32Array(2);

  constructor(
    readonly dimensions: number,
    readonly capacity: number,
    private readonly store: PointStore,
    private readonly rng: JavaRandom,
    /** Scratch root-to-leaf path shared by the forest's trees (length >= capacity). */
    private readonly path: Int32Array,
  ) {
    const nodes = capacity - 1;
    this.node = new Int32Array(2 * nodes);
    this.nodeF32 = new Float32Array(this.node.buffer);
    this.cutDim = new Uint16Array(nodes);
    this.box = new Float32Array(2 * nodes * dimensions);
    this.boxRange = new Float64Array(dimensions >= WIDE ? nodes : 0);
    this.outside = new Int32Array(dimensions >= WIDE ? dimensions : 0);
    this.leafPoint = new Int32Array(capacity);
    this.leafMass = new Int32Array(capacity);
    for (let i = 0; i < nodes; i++) this.node[(i << 1) + 1] = i + 1 < nodes ? i + 1 : -1;
    for (let l = 0; l < capacity; l++) this.leafPoint[l] = l + 1 < capacity ? l + 1 : -1;
    if (nodes === 0) this.freeNode = -1;
  }

  left(n: number): number {
    return (this.node[(n << 1) + 1]! << 16) >> 16;
  }

  right(n: number): number {
    return this.node[(n << 1) + 1]! >> 16;
  }

  cutValue(n: number): number {
    return this.nodeF32[n << 1]!;
  }

  private setChildren(n: number, left: number, right: number): void {
    this.node[(n << 1) + 1] = (left & 0xffff) | (right << 16);
  }

  private setLeft(n: number, c: number): void {
    this.setChildren(n, c, this.right(n));
  }

  private setRight(n: number, c: number): void {
    this.setChildren(n, this.left(n), c);
  }

  private newNode(): number {
    const n = this.freeNode;
    this.freeNode = this.node[(n << 1) + 1]!;
    return n;
  }

  private newLeaf(point: number): number {
    const l = this.freeLeaf;
    this.freeLeaf = this.leafPoint[l]!;
    this.leafPoint[l] = point;
    this.leafMass[l] = 1;
    this.store.retain(point);
    return l;
  }

  private freeLeafSlot(l: number): void {
    this.store.release(this.leafPoint[l]!);
    this.leafPoint[l] = this.freeLeaf;
    this.freeLeaf = l;
  }

  private freeNodeSlot(n: number): void {
    this.node[(n << 1) + 1] = this.freeNode;
    this.freeNode = n;
  }

  /** Restore: a new internal node with the given cut (children linked by linkPreorder). */
  restoreInternal(cutDim: number, cutValue: number): number {
    const n = this.newNode();
    this.cutDim[n] = cutDim;
    this.nodeF32[n << 1] = cutValue;
    return n;
  }

  /** Restore: a new leaf for a stored point, mass 0 until the sampler's entries are counted. */
  restoreLeaf(point: number): number {
    const l = this.newLeaf(point);
    this.leafMass[l] = 0;
    return l;
  }

  /** Restore: links nodes given in preorder (internal ≥ 0, leaf ~slot) and derives every box. */
  linkPreorder(codes: number[]): void {
    this.root = codes.length > 0 ? codes[0]! : NONE;
    const open: number[] = []; // internal nodes still missing a child, ·2 + (left filled)
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      if (i > 0) {
        const entry = open[open.length - 1]!;
        if ((entry & 1) === 0) {
          this.setLeft(entry >> 1, c);
          open[open.length - 1] = entry | 1;
        } else {
          this.setRight(entry >> 1, c);
          open.pop();
        }
      }
      if (c >= 0) open.push(c << 1);
    }
    // Reverse preorder visits children before their parents.
    for (let i = codes.length - 1; i >= 0; i--) if (codes[i]! >= 0) this.refitBox(codes[i]!);
  }

  /** Follows cuts from the root to a leaf, recording the path; returns the leaf's depth. */
  lookup(q: Float32Array, qo: number): number {
    return this.walk(this.path, this.root, 0, q, qo);
  }

  /** Continues a lookup at `node`, already `depth` levels down; returns the leaf's depth. */
  walk(path: Int32Array, node: number, depth: number, q: Float32Array, qo: number): number {
    const nodes = this.node;
    const cuts = this.nodeF32;
    const dims = this.cutDim;
    if (this.dimensions === 1) {
      const x = q[qo]!;
      while (node >= 0) {
        path[depth++] = node;
        const children = nodes[(node << 1) + 1]!;
        node = x > cuts[node << 1]! ? children >> 16 : (children << 16) >> 16;
      }
      path[depth] = node;
      return depth;
    }
    while (node >= 0) {
      path[depth++] = node;
      const children = nodes[(node << 1) + 1]!;
      node = q[qo + dims[node]!]! > cuts[node << 1]! ? children >> 16 : (children << 16) >> 16;
    }
    path[depth] = node;
    return depth;
  }

  /** Min of the box of `code` (a leaf's box is its point) in dimension d. */
  private min(code: number, d: number): number {
    return code < 0
      ? this.store.coords[this.leafPoint[~code]! * this.dimensions + d]!
      : this.box[2 * code * this.dimensions + d]!;
  }

  private max(code: number, d: number): number {
    return code < 0
      ? this.store.coords[this.leafPoint[~code]! * this.dimensions + d]!
      : this.box[(2 * code + 1) * this.dimensions + d]!;
  }

  /**
   * Inserts the stored point `point` (§6.3). Returns the leaf slot that now holds it,
   * which may be an existing leaf with an equal point (a duplicate: no draws).
   */
  insert(point: number): number {
    const D = this.dimensions;
    const coords = this.store.coords;
    const po = point * D;
    if (this.root === NONE) {
      const l = this.newLeaf(point);
      this.root = ~l;
      return l;
    }
    const path = this.path;
    const h = this.lookup(coords, po);
    const leaf = ~path[h]!;
    if (this.store.equals(this.leafPoint[leaf]!, coords, po)) {
      this.leafMass[leaf]!++;
      return leaf;
    }

    const rng = this.rng;
    rng.setSeed(this.seed[0]!, this.seed[1]!);
    rng.nextLong(this.seed, 0);

    // Walk up from the leaf; the box at each level is that node's own box. The highest
    // separating level wins.
    const wide = D >= WIDE;
    if (wide && levelTotals.length <= h) levelTotals = new Float64Array(h + 1);
    const totals = levelTotals;
    let cutLevel = -1;
    let cutD = 0;
    let cutV = 0;
    let level = h;
    for (; ; level--) {
      const code = path[level]!;
      const r = rng.nextDouble();
      this.randomCut(r, coords, po, code);
      if (wide) totals[level] = this.cutTotal;
      const d = this.chosenDim;
      const v = this.chosenValue;
      const pd = coords[po + d]!;
      if ((pd <= v && v < this.min(code, d)) || (pd > v && v >= this.max(code, d))) {
        cutLevel = level;
        cutD = d;
        cutV = v;
      }
      if (level === 0 || this.boxHoldsPoint) break;
    }
    // Boxes at levels [0, holdLevel] already hold p; those below it do not.
    const holdLevel = this.boxHoldsPoint ? level : -1;

    // Splice a new internal node above the chosen subtree.
    const sub = path[cutLevel]!;
    const leafNew = this.newLeaf(point);
    const node = this.newNode();
    this.cutDim[node] = cutD;
    this.nodeF32[node << 1] = cutV;
    if (coords[po + cutD]! <= cutV) this.setChildren(node, ~leafNew, sub);
    else this.setChildren(node, sub, ~leafNew);
    const base = 2 * node * D;
    const box = this.box;
    const sa = sub < 0 ? coords : box;
    const sl = sub < 0 ? this.leafPoint[~sub]! * D : 2 * sub * D;
    const sh = sub < 0 ? sl : sl + D;
    for (let d = 0; d < D; d++) {
      const x = coords[po + d]!;
      const lo = sa[sl + d]!;
      const hi = sa[sh + d]!;
      box[base + d] = x < lo ? x : lo;
      box[base + D + d] = x > hi ? x : hi;
    }
    // The new node's box is the cut's box at cutLevel, sub's box ∪ p.
    if (wide) this.boxRange[node] = totals[cutLevel]!;
    if (cutLevel === 0) {
      this.root = node;
    } else {
      const parent = path[cutLevel - 1]!;
      if (this.left(parent) === sub) this.setLeft(parent, node);
      else this.setRight(parent, node);
      // Grow the ancestors' boxes that do not hold p yet (each was a cut's box, so its new
      // range sum is that cut's total).
      for (let l = cutLevel - 1; l > holdLevel; l--) {
        const a = path[l]!;
        this.extendBox(a, coords, po);
        if (wide) this.boxRange[a] = totals[l]!;
      }
    }
    return leafNew;
  }

  private chosenDim = 0;
  private chosenValue = 0;
  /** Set by randomCut: the f64 sum of the gaps of the box ∪ p, in dimension order. */
  private cutTotal = 0;

  /**
   * randomCut(r, p, X) of §6.3 step 4 with X the box of `code`; sets chosenDim/Value, and
   * boxHoldsPoint (X contains p), which the first pass finds for free.
   */
  private randomCut(r: number, p: Float32Array, po: number, code: number): void {
    const D = this.dimensions;
    // The box's minima at arr[lo0..] and maxima at arr[hi0..]: a leaf's box is its point.
    const arr = code < 0 ? this.store.coords : this.box;
    const lo0 = code < 0 ? this.leafPoint[~code]! * D : 2 * code * D;
    const hi0 = code < 0 ? lo0 : lo0 + D;
    if (cutGaps.length < D) cutGaps = new Float64Array(D);
    const gaps = cutGaps;
    let total = 0;
    let inside = true;
    let d = 0;
    // Four coordinates per iteration (V8 checks each typed array once per iteration, not
    // per load); the terms and their order are those of the one-by-one loop below.
    for (; d + 4 <= D; d += 4) {
      const x0 = p[po + d]!;
      const x1 = p[po + d + 1]!;
      const x2 = p[po + d + 2]!;
      const x3 = p[po + d + 3]!;
      const a0 = arr[lo0 + d]!;
      const a1 = arr[lo0 + d + 1]!;
      const a2 = arr[lo0 + d + 2]!;
      const a3 = arr[lo0 + d + 3]!;
      const b0 = arr[hi0 + d]!;
      const b1 = arr[hi0 + d + 1]!;
      const b2 = arr[hi0 + d + 2]!;
      const b3 = arr[hi0 + d + 3]!;
      if (x0 < a0 || x0 > b0 || x1 < a1 || x1 > b1 || x2 < a2 || x2 > b2 || x3 < a3 || x3 > b3) inside = false;
      const g0 = Math.fround((x0 > b0 ? x0 : b0) - (x0 < a0 ? x0 : a0));
      const g1 = Math.fround((x1 > b1 ? x1 : b1) - (x1 < a1 ? x1 : a1));
      const g2 = Math.fround((x2 > b2 ? x2 : b2) - (x2 < a2 ? x2 : a2));
      const g3 = Math.fround((x3 > b3 ? x3 : b3) - (x3 < a3 ? x3 : a3));
      gaps[d] = g0;
      gaps[d + 1] = g1;
      gaps[d + 2] = g2;
      gaps[d + 3] = g3;
      total += g0;
      total += g1;
      total += g2;
      total += g3;
    }
    for (; d < D; d++) {
      const x = p[po + d]!;
      const a = arr[lo0 + d]!;
      const b = arr[hi0 + d]!;
      if (x < a || x > b) inside = false;
      const g = Math.fround((x > b ? x : b) - (x < a ? x : a));
      gaps[d] = g;
      total += g;
    }
    this.boxHoldsPoint = inside;
    this.cutTotal = total;
    // The cut lies in the first dimension whose gap reaches what is left of t.
    let t = r * total;
    let cut = -1;
    for (d = 0; d + 4 <= D; d += 4) {
      const g0 = gaps[d]!;
      const g1 = gaps[d + 1]!;
      const g2 = gaps[d + 2]!;
      const g3 = gaps[d + 3]!;
      if (t <= g0 && g0 > 0) {
        cut = d;
        break;
      }
      t -= g0;
      if (t <= g1 && g1 > 0) {
        cut = d + 1;
        break;
      }
      t -= g1;
      if (t <= g2 && g2 > 0) {
        cut = d + 2;
        break;
      }
      t -= g2;
      if (t <= g3 && g3 > 0) {
        cut = d + 3;
        break;
      }
      t -= g3;
    }
    if (cut < 0) {
      for (; d < D; d++) {
        const g = gaps[d]!;
        if (t <= g && g > 0) {
          cut = d;
          break;
        }
        t -= g;
      }
    }
    if (cut >= 0) {
      const x = p[po + cut]!;
      const a = arr[lo0 + cut]!;
      const b = arr[hi0 + cut]!;
      const hi = x > b ? x : b;
      let v = Math.fround((x < a ? x : a) + t);
      if (v >= hi) v = nextDown(hi);
      this.chosenDim = cut;
      this.chosenValue = v;
      return;
    }
    this.fallbackCut(r, p, po, code);
  }

  /** Reached only when rounding leaves t above every gap (r extremely close to 1). */
  private fallbackCut(r: number, p: Float32Array, po: number, code: number): void {
    const D = this.dimensions;
    const x = r * 4611686018427387904; // 2^62, exact: r has 53 significant bits
    const hi32 = Math.floor(x / 4294967296);
    const rng = this.rng;
    rng.setSeed(hi32 | 0, (x - hi32 * 4294967296) | 0);
    const ascending = rng.nextDouble() < 0.5;
    for (let k = 0; k < D; k++) {
      const d = ascending ? k : D - 1 - k;
      const v = p[po + d]!;
      const a = this.min(code, d);
      const b = this.max(code, d);
      const lo = v < a ? v : a;
      const hi = v > b ? v : b;
      if (hi > lo) {
        this.chosenDim = d;
        this.chosenValue = nextDown(hi);
        return;
      }
    }
    throw new Error('RandomCutTree: no dimension to cut (internal invariant broken)');
  }

  /** box ← box ∪ {p} (its range sum is the caller's). */
  private extendBox(node: number, p: Float32Array, po: number): void {
    const D = this.dimensions;
    const base = 2 * node * D;
    const top = base + D;
    const box = this.box;
    for (let d = 0; d < D; d++) {
      const x = p[po + d]!;
      if (x < box[base + d]!) box[base + d] = x;
      if (x > box[top + d]!) box[top + d] = x;
    }
  }

  /** box(node) ← box(left) ∪ box(right); false when nothing changed. */
  private refitBox(node: number): boolean {
    const D = this.dimensions;
    const base = 2 * node * D;
    const l = this.left(node);
    const r = this.right(node);
    const box = this.box;
    const coords = this.store.coords;
    const la = l < 0 ? coords : box;
    const ll = l < 0 ? this.leafPoint[~l]! * D : 2 * l * D;
    const lh = l < 0 ? ll : ll + D;
    const ra = r < 0 ? coords : box;
    const rl = r < 0 ? this.leafPoint[~r]! * D : 2 * r * D;
    const rh = r < 0 ? rl : rl + D;
    let changed = false;
    let range = 0;
    for (let d = 0; d < D; d++) {
      const a = la[ll + d]!;
      const b = ra[rl + d]!;
      const lo = a < b ? a : b;
      const c = la[lh + d]!;
      const e = ra[rh + d]!;
      const hi = c > e ? c : e;
      range += Math.fround(hi - lo);
      if (lo !== box[base + d]) {
        box[base + d] = lo;
        changed = true;
      }
      if (hi !== box[base + D + d]) {
        box[base + D + d] = hi;
        changed = true;
      }
    }
    if (D >= WIDE) this.boxRange[node] = range;
    return changed;
  }

  /**
   * refitBox after the point at p[po..] left the subtree of `node` (D >= WIDE). Where p lay
   * strictly inside the box, another point of the subtree holds that bound, so it stays as it
   * is and the children need not be read; elsewhere, as refitBox. Same boxes, same range sum.
   */
  private refitAfterDelete(node: number, p: Float32Array, po: number): boolean {
    const D = this.dimensions;
    const base = 2 * node * D;
    const box = this.box;
    const l = this.left(node);
    const r = this.right(node);
    const coords = this.store.coords;
    const la = l < 0 ? coords : box;
    const ll = l < 0 ? this.leafPoint[~l]! * D : 2 * l * D;
    const lh = l < 0 ? ll : ll + D;
    const ra = r < 0 ? coords : box;
    const rl = r < 0 ? this.leafPoint[~r]! * D : 2 * r * D;
    const rh = r < 0 ? rl : rl + D;
    let changed = false;
    let range = 0;
    for (let d = 0; d < D; d++) {
      const x = p[po + d]!;
      let lo = box[base + d]!;
      let hi = box[base + D + d]!;
      // Each bound is read again from the children only where p held it.
      if (x <= lo) {
        const a = la[ll + d]!;
        const b = ra[rl + d]!;
        const v = a < b ? a : b;
        if (v !== lo) {
          box[base + d] = v;
          lo = v;
          changed = true;
        }
      }
      if (x >= hi) {
        const c = la[lh + d]!;
        const e = ra[rh + d]!;
        const v = c > e ? c : e;
        if (v !== hi) {
          box[base + D + d] = v;
          hi = v;
          changed = true;
        }
      }
      range += Math.fround(hi - lo);
    }
    this.boxRange[node] = range;
    return changed;
  }

  /** Removes one reference to the point of leaf `leaf` (§6.4). */
  delete(leaf: number): void {
    if (--this.leafMass[leaf]! > 0) return;
    const coords = this.store.coords;
    const po = this.leafPoint[leaf]! * this.dimensions;
    const path = this.path;
    const h = this.lookup(coords, po);
    if (path[h] !== ~leaf) throw new Error('RandomCutTree: evicted point not found (internal invariant broken)');
    this.freeLeafSlot(leaf);
    if (h === 0) {
      this.root = NONE;
      return;
    }
    const parent = path[h - 1]!;
    const sibling = this.left(parent) === ~leaf ? this.right(parent) : this.left(parent);
    this.freeNodeSlot(parent);
    if (h === 1) {
      this.root = sibling;
      return;
    }
    const grand = path[h - 2]!;
    if (this.left(grand) === parent) this.setLeft(grand, sibling);
    else this.setRight(grand, sibling);
    if (this.dimensions >= WIDE) {
      for (let level = h - 2; level >= 0; level--) {
        if (!this.refitAfterDelete(path[level]!, coords, po)) break;
      }
      return;
    }
    for (let level = h - 2; level >= 0; level--) {
      if (!this.refitBox(path[level]!)) break;
    }
  }

  /** Per-tree anomaly score of q with tree mass `mass` (§7.1). */
  score(q: Float32Array, qo: number, mass: number, ln: Float64Array): number {
    return this.scoreAlong(this.path, this.lookup(q, qo), q, qo, mass, ln);
  }

  /** The score of q given its root-to-leaf path (from walk) and leaf depth h. */
  scoreAlong(path: Int32Array, h: number, q: Float32Array, qo: number, mass: number, ln: Float64Array): number {
    const D = this.dimensions;
    const leaf = ~path[h]!;
    let s: number;
    if (this.store.equals(this.leafPoint[leaf]!, q, qo)) {
      const m = this.leafMass[leaf]!;
      s = (1.0 - m / (2.0 * mass)) * (1.0 / (h + ln[m + 1]! / LN2));
    } else if (D === 1) {
      // The same arithmetic as below with the one-coordinate loops unrolled away.
      s = INVERSE_DEPTH[h]!;
      const box = this.box;
      const x = q[qo]!;
      for (let j = h - 1; j >= 0; j--) {
        const base = path[j]! << 1;
        const lo = box[base]!;
        const hi = box[base + 1]!;
        const gb = Math.fround(lo - x);
        const ga = Math.fround(x - hi);
        const out = (ga > 0 ? ga : 0) + (gb > 0 ? gb : 0);
        if (out === 0) break;
        const pr = out / (Math.fround(hi - lo) + out);
        s = pr * INVERSE_DEPTH[j]! + (1.0 - pr) * s;
      }
    } else if (D < WIDE) {
      s = INVERSE_DEPTH[h]!;
      const box = this.box;
      for (let j = h - 1; j >= 0; j--) {
        const base = 2 * path[j]! * D;
        // Three sums in one pass; each still adds in dimension order.
        let below = 0;
        let above = 0;
        let range = 0;
        for (let d = 0; d < D; d++) {
          const lo = box[base + d]!;
          const hi = box[base + D + d]!;
          const x = q[qo + d]!;
          const gb = Math.fround(lo - x);
          const ga = Math.fround(x - hi);
          below += gb > 0 ? gb : 0;
          above += ga > 0 ? ga : 0;
          range += Math.fround(hi - lo);
        }
        const out = above + below;
        if (out === 0) break;
        const pr = out / (range + out);
        s = pr * INVERSE_DEPTH[j]! + (1.0 - pr) * s;
      }
    } else {
      // Ancestors' boxes nest, so once q[d] lies inside one it lies inside all above: the
      // below/above sums need only the dimensions still outside (the skipped terms are +0),
      // and the range sum comes from the cache.
      s = INVERSE_DEPTH[h]!;
      const box = this.box;
      const outside = this.outside;
      const ranges = this.boxRange;
      // A coordinate below one box is below or inside every box above it, never above (and
      // the same the other way round), so the outside coordinates are kept in two lists:
      // below at outside[0..nb) in dimension order, above at outside[ta..D) filled from the
      // end (so read from D - 1 down it is in dimension order). Each coordinate then needs one
      // comparison and one box load per ancestor; the two sums add the same terms in the same
      // order as one pass over every coordinate would.
      let nb = 0;
      let ta = D;
      // Two levels per pass over the lists, as in the kernel: level j (box A) and its parent
      // j - 1 (box B, which holds A, so a coordinate outside B is outside A and B's bound is
      // read only there). Each level's sums add their terms in dimension order, the lists kept
      // are B's, and s is updated level by level with the same breaks. At the root, B is A
      // again and is not used.
      for (let j = h - 1; j >= 0; j -= 2) {
        const nodeA = path[j]!;
        const nodeB = j > 0 ? path[j - 1]! : nodeA;
        const baseA = 2 * nodeA * D;
        const topA = baseA + D;
        const baseB = 2 * nodeB * D;
        const topB = baseB + D;
        let belowA = 0;
        let aboveA = 0;
        let belowB = 0;
        let aboveB = 0;
        // fround(lo - x) > 0 exactly when lo > x (an f32 difference of unequal values is never
        // 0), so the differences are computed only for coordinates outside. The loops go four
        // coordinates at a time: V8 checks each typed array once per loop iteration, so an
        // iteration over four costs little more than one over one; the terms and their order
        // are those of the one-by-one loop.
        if (j === h - 1) {
          let d = 0;
          for (; d + 4 <= D; d += 4) {
            const x0 = q[qo + d]!;
            const x1 = q[qo + d + 1]!;
            const x2 = q[qo + d + 2]!;
            const x3 = q[qo + d + 3]!;
            const l0 = box[baseA + d]!;
            const l1 = box[baseA + d + 1]!;
            const l2 = box[baseA + d + 2]!;
            const l3 = box[baseA + d + 3]!;
            if (l0 > x0) {
              belowA += Math.fround(l0 - x0);
              const lb = box[baseB + d]!;
              if (lb > x0) {
                belowB += Math.fround(lb - x0);
                outside[nb++] = d;
              }
            } else {
              const u = box[topA + d]!;
              if (x0 > u) {
                aboveA += Math.fround(x0 - u);
                const ub = box[topB + d]!;
                if (x0 > ub) {
                  aboveB += Math.fround(x0 - ub);
                  outside[--ta] = d;
                }
              }
            }
            if (l1 > x1) {
              belowA += Math.fround(l1 - x1);
              const lb = box[baseB + d + 1]!;
              if (lb > x1) {
                belowB += Math.fround(lb - x1);
                outside[nb++] = d + 1;
              }
            } else {
              const u = box[topA + d + 1]!;
              if (x1 > u) {
                aboveA += Math.fround(x1 - u);
                const ub = box[topB + d + 1]!;
                if (x1 > ub) {
                  aboveB += Math.fround(x1 - ub);
                  outside[--ta] = d + 1;
                }
              }
            }
            if (l2 > x2) {
              belowA += Math.fround(l2 - x2);
              const lb = box[baseB + d + 2]!;
              if (lb > x2) {
                belowB += Math.fround(lb - x2);
                outside[nb++] = d + 2;
              }
            } else {
              const u = box[topA + d + 2]!;
              if (x2 > u) {
                aboveA += Math.fround(x2 - u);
                const ub = box[topB + d + 2]!;
                if (x2 > ub) {
                  aboveB += Math.fround(x2 - ub);
                  outside[--ta] = d + 2;
                }
              }
            }
            if (l3 > x3) {
              belowA += Math.fround(l3 - x3);
              const lb = box[baseB + d + 3]!;
              if (lb > x3) {
                belowB += Math.fround(lb - x3);
                outside[nb++] = d + 3;
              }
            } else {
              const u = box[topA + d + 3]!;
              if (x3 > u) {
                aboveA += Math.fround(x3 - u);
                const ub = box[topB + d + 3]!;
                if (x3 > ub) {
                  aboveB += Math.fround(x3 - ub);
                  outside[--ta] = d + 3;
                }
              }
            }
          }
          for (; d < D; d++) {
            const x0 = q[qo + d]!;
            const l0 = box[baseA + d]!;
            if (l0 > x0) {
              belowA += Math.fround(l0 - x0);
              const lb = box[baseB + d]!;
              if (lb > x0) {
                belowB += Math.fround(lb - x0);
                outside[nb++] = d;
              }
            } else {
              const u = box[topA + d]!;
              if (x0 > u) {
                aboveA += Math.fround(x0 - u);
                const ub = box[topB + d]!;
                if (x0 > ub) {
                  aboveB += Math.fround(x0 - ub);
                  outside[--ta] = d;
                }
              }
            }
          }
        } else {
          // Each list is compacted in place: entries are read four at a time before any of
          // them is written back (m <= k).
          let m = 0;
          let k = 0;
          for (; k + 4 <= nb; k += 4) {
            const d0 = outside[k]!;
            const d1 = outside[k + 1]!;
            const d2 = outside[k + 2]!;
            const d3 = outside[k + 3]!;
            const l0 = box[baseA + d0]!;
            const l1 = box[baseA + d1]!;
            const l2 = box[baseA + d2]!;
            const l3 = box[baseA + d3]!;
            const x0 = q[qo + d0]!;
            const x1 = q[qo + d1]!;
            const x2 = q[qo + d2]!;
            const x3 = q[qo + d3]!;
            if (l0 > x0) {
              belowA += Math.fround(l0 - x0);
              const lb = box[baseB + d0]!;
              if (lb > x0) {
                belowB += Math.fround(lb - x0);
                outside[m++] = d0;
              }
            }
            if (l1 > x1) {
              belowA += Math.fround(l1 - x1);
              const lb = box[baseB + d1]!;
              if (lb > x1) {
                belowB += Math.fround(lb - x1);
                outside[m++] = d1;
              }
            }
            if (l2 > x2) {
              belowA += Math.fround(l2 - x2);
              const lb = box[baseB + d2]!;
              if (lb > x2) {
                belowB += Math.fround(lb - x2);
                outside[m++] = d2;
              }
            }
            if (l3 > x3) {
              belowA += Math.fround(l3 - x3);
              const lb = box[baseB + d3]!;
              if (lb > x3) {
                belowB += Math.fround(lb - x3);
                outside[m++] = d3;
              }
            }
          }
          for (; k < nb; k++) {
            const d0 = outside[k]!;
            const l0 = box[baseA + d0]!;
            const x0 = q[qo + d0]!;
            if (l0 > x0) {
              belowA += Math.fround(l0 - x0);
              const lb = box[baseB + d0]!;
              if (lb > x0) {
                belowB += Math.fround(lb - x0);
                outside[m++] = d0;
              }
            }
          }
          nb = m;
          // The above list fills the scratch from its end: read from the end, it is in
          // dimension order, and it is compacted towards the end the same way.
          let w = D;
          k = D - 1;
          for (; k - 3 >= ta; k -= 4) {
            const d0 = outside[k]!;
            const d1 = outside[k - 1]!;
            const d2 = outside[k - 2]!;
            const d3 = outside[k - 3]!;
            const u0 = box[topA + d0]!;
            const u1 = box[topA + d1]!;
            const u2 = box[topA + d2]!;
            const u3 = box[topA + d3]!;
            const x0 = q[qo + d0]!;
            const x1 = q[qo + d1]!;
            const x2 = q[qo + d2]!;
            const x3 = q[qo + d3]!;
            if (x0 > u0) {
              aboveA += Math.fround(x0 - u0);
              const ub = box[topB + d0]!;
              if (x0 > ub) {
                aboveB += Math.fround(x0 - ub);
                outside[--w] = d0;
              }
            }
            if (x1 > u1) {
              aboveA += Math.fround(x1 - u1);
              const ub = box[topB + d1]!;
              if (x1 > ub) {
                aboveB += Math.fround(x1 - ub);
                outside[--w] = d1;
              }
            }
            if (x2 > u2) {
              aboveA += Math.fround(x2 - u2);
              const ub = box[topB + d2]!;
              if (x2 > ub) {
                aboveB += Math.fround(x2 - ub);
                outside[--w] = d2;
              }
            }
            if (x3 > u3) {
              aboveA += Math.fround(x3 - u3);
              const ub = box[topB + d3]!;
              if (x3 > ub) {
                aboveB += Math.fround(x3 - ub);
                outside[--w] = d3;
              }
            }
          }
          for (; k >= ta; k--) {
            const d0 = outside[k]!;
            const u0 = box[topA + d0]!;
            const x0 = q[qo + d0]!;
            if (x0 > u0) {
              aboveA += Math.fround(x0 - u0);
              const ub = box[topB + d0]!;
              if (x0 > ub) {
                aboveB += Math.fround(x0 - ub);
                outside[--w] = d0;
              }
            }
          }
          ta = w;
        }
        const outA = aboveA + belowA;
        if (outA === 0) break;
        const prA = outA / (ranges[nodeA]! + outA);
        s = prA * INVERSE_DEPTH[j]! + (1.0 - prA) * s;
        if (j === 0) break;
        const outB = aboveB + belowB;
        if (outB === 0) break;
        const prB = outB / (ranges[nodeB]! + outB);
        s = prB * INVERSE_DEPTH[j - 1]! + (1.0 - prB) * s;
      }
    }
    return (s * ln[mass + 1]!) / LN2;
  }

  private gapRange = 0;
  private gapDiff = 0;

  /**
   * The gap routine of §7.3 for the box with minima at b[lo..] and maxima at b[hi..]: per dimension
   * the f64 distances by which q lies above and below the box, plus newRange/diffSum.
   */
  private gap(q: Float32Array, qo: number, b: Float32Array, lo: number, hi: number, up: Float64Array, dn: Float64Array): void {
    let newRange = 0;
    let diffSum = 0;
    for (let d = 0; d < this.dimensions; d++) {
      const x = q[qo + d]!;
      const bmin = b[lo + d]!;
      const bmax = b[hi + d]!;
      const low = bmin < x ? bmin : x;
      const high = bmax > x ? bmax : x;
      newRange += Math.fround(high - low);
      const u = high - bmax > 0 ? high - bmax : 0;
      const w = bmin - low > 0 ? bmin - low : 0;
      if (u + w > 0) {
        diffSum += w + u;
        up[d] = u;
        dn[d] = w;
      } else {
        up[d] = 0;
        dn[d] = 0;
      }
    }
    this.gapRange = newRange;
    this.gapDiff = diffSum;
  }

  /**
   * Per-tree attribution of q (§7.3), written to high/low (length D), already scaled by
   * LN[M+1]/ln2. `shadow` is a 2D-length scratch box.
   */
  attribution(
    q: Float32Array, qo: number, mass: number, ln: Float64Array,
    high: Float64Array, low: Float64Array, up: Float64Array, dn: Float64Array,
    shadow: Float32Array,
  ): void {
    const D = this.dimensions;
    const path = this.path;
    const h = this.lookup(q, qo);
    const leaf = ~path[h]!;
    const coords = this.store.coords;
    const po = this.leafPoint[leaf]! * D;
    this.gap(q, qo, coords, po, po, up, dn);
    const dup = this.gapRange <= 0;
    let saved: number;
    if (dup) {
      const m = this.leafMass[leaf]!;
      saved = (1.0 - m / (2.0 * mass)) * (1.0 / (h + ln[m + 1]! / LN2));
      const share = saved / (2 * D);
      for (let d = 0; d < D; d++) {
        high[d] = share;
        low[d] = share;
      }
    } else {
      saved = 1.0 / (h + 1);
      const range = this.gapRange;
      for (let d = 0; d < D; d++) {
        high[d] = (saved * up[d]!) / range;
        low[d] = (saved * dn[d]!) / range;
      }
    }
    for (let j = h - 1; j >= 0; j--) {
      const node = path[j]!;
      if (dup) {
        // Shadow box: the boxes of the siblings along the path, merged (the path minus q).
        const child = path[j + 1]!;
        const sib = this.left(node) === child ? this.right(node) : this.left(node);
        for (let d = 0; d < D; d++) {
          const a = this.min(sib, d);
          const b = this.max(sib, d);
          if (j === h - 1) {
            shadow[d] = a;
            shadow[D + d] = b;
          } else {
            if (a < shadow[d]!) shadow[d] = a;
            if (b > shadow[D + d]!) shadow[D + d] = b;
          }
        }
        this.gap(q, qo, shadow, 0, D, up, dn);
      } else {
        this.gap(q, qo, this.box, 2 * node * D, (2 * node + 1) * D, up, dn);
      }
      const range = this.gapRange;
      const p = this.gapDiff / range;
      const inside = !(p > 0);
      if (!inside) {
        const ns = 1.0 / (j + 1);
        const keep = 1.0 - p;
        for (let d = 0; d < D; d++) {
          high[d] = (up[d]! / range) * ns + keep * high[d]!;
          low[d] = (dn[d]! / range) * ns + keep * low[d]!;
        }
      }
      if (dup && (inside || j === 0)) {
        let norm = 0;
        for (let d = 0; d < D; d++) norm += high[d]! + low[d]!;
        if (norm > 0) {
          const f = saved / norm;
          for (let d = 0; d < D; d++) {
            high[d]! *= f;
            low[d]! *= f;
          }
        }
      }
      if (inside) break;
    }
    const scale = ln[mass + 1]!;
    for (let d = 0; d < D; d++) {
      high[d] = (high[d]! * scale) / LN2;
      low[d] = (low[d]! * scale) / LN2;
    }
  }
}
