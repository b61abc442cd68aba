import { JavaRandom } from './java-random';
import { LN2 } from './ln';
import { PointStore } from './point-store';

/** Node codes: internal nodes are 0..S-2; a leaf slot l is coded ~l (negative). */
export const NONE: i32 = 0x7fffffff;

/** The largest f32 strictly below x (x finite, not the lowest f32). */
@inline function nextDown(x: f32): f32 {
  if (x == 0) return reinterpret<f32>(<i32>0x80000001);
  return reinterpret<f32>(reinterpret<i32>(x) + (x > 0 ? -1 : 1));
}

/** Address of element i of an f32 array. */
@inline function at(a: StaticArray<f32>, i: i32): usize {
  return changetype<usize>(a) + (<usize>i << 2);
}

/**
 * The four f32 lanes of w widened to f64 and added to acc one after another, in lane order:
 * the same additions as the scalar loop makes.
 */
@inline function addLanes(acc: f64, w: v128): f64 {
  // Widened two lanes at a time (the same f64 values as four scalar conversions).
  const lo = f64x2.promote_low_f32x4(w);
  const hi = f64x2.promote_low_f32x4(i32x4.shuffle(w, w, 2, 3, 2, 3));
  acc += f64x2.extract_lane(lo, 0);
  acc += f64x2.extract_lane(lo, 1);
  acc += f64x2.extract_lane(hi, 0);
  return acc + f64x2.extract_lane(hi, 1);
}

/**
 * Adds the lanes of b to acc's lane 0 and those of a to its lane 1, lane by lane in order:
 * two ordered f64 sums (each the same additions as its scalar loop) for the price of one.
 */
@inline function addPairs(acc: v128, b: v128, a: v128): v128 {
  const lo = i32x4.shuffle(b, a, 0, 4, 1, 5);
  const hi = i32x4.shuffle(b, a, 2, 6, 3, 7);
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(lo));
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(i32x4.shuffle(lo, lo, 2, 3, 2, 3)));
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(hi));
  return f64x2.add(acc, f64x2.promote_low_f32x4(i32x4.shuffle(hi, hi, 2, 3, 2, 3)));
}

/** addLanes over lanes 0..2 only. */
@inline function addLanes3(acc: f64, w: v128): f64 {
  acc += <f64>f32x4.extract_lane(w, 0);
  acc += <f64>f32x4.extract_lane(w, 1);
  return acc + <f64>f32x4.extract_lane(w, 2);
}

// SIMD note: the scalar code's `a < b ? a : b` is f32x4.pmin(b, a) and `a > b ? a : b` is
// f32x4.pmax(b, a) lane by lane, including signed zeros, so the vector passes below store
// exactly the boxes the scalar loops would; f64 sums still add lane by lane, in order.

/**
 * From this many dimensions on, trees cache each box's range sum and the score ascent visits
 * only the coordinates outside each box; below it, one pass with three sums is cheaper.
 */
export const WIDE: i32 = 8;

/** INVERSE_DEPTH[j] = 1/(j+1), exactly as computed inline, without a division per level. */
const INVERSE_DEPTH = new StaticArray<f64>(4097);
for (let j = 0; j < 4097; j++) unchecked(INVERSE_DEPTH[j] = 1.0 / <f64>(j + 1));

/**
 * The random cut's total per level of one insert (D >= WIDE): the f64 sum, in dimension
 * order, of (max - min) over the box ∪ p, which is exactly the range sum the new node and
 * every extended ancestor will hold, so they take it from here instead of adding again.
 * Shared by every tree (one insert at a time), grown to the deepest insert seen.
 */
let levelTotals = new StaticArray<f64>(257);

/** A child from a node's packed children word: right when goRight, else left (both i16). */
@inline function child(children: i32, goRight: bool): i32 {
  return select<i32>(children >> 16, (children << 16) >> 16, goRight);
}

/** Leaf depths of the second to fourth trees after lookupQuad. */
export let quadDepthB: i32 = 0;
export let quadDepthC: i32 = 0;
export let quadDepthD: i32 = 0;

/** XOR of one word per cache line of the box at b (bytes long), and of its last word. */
@inline function touchLines(b: usize, bytes: usize): i32 {
  let acc = load<i32>(b + bytes - 4);
  let off: usize = 0;
  for (; off + 256 <= bytes; off += 256) {
    acc ^= load<i32>(b + off) ^ load<i32>(b + off, 64) ^ load<i32>(b + off, 128) ^ load<i32>(b + off, 192);
  }
  for (; off < bytes; off += 64) acc ^= load<i32>(b + off);
  return acc;
}

/** Where lookupQuad's box loads go, so they are kept. */
let boxSink: i32 = 0;

/**
 * Four independent lookups walked in lockstep. Each step of one lookup waits on the load
 * of the step before, leaving the CPU idle; four interleaved walks keep it busy. Paths are
 * recorded as by walk(); returns a's leaf depth, the others' are left in quadDepthB..D.
 */
export function lookupQuad(
  a: RandomCutTree, b: RandomCutTree, c: RandomCutTree, d: RandomCutTree, q: StaticArray<f32>,
  pa: StaticArray<i32>, pb: StaticArray<i32>, pc: StaticArray<i32>, pd: StaticArray<i32>,
): i32 {
  return walkFour(a, b, c, d, q, pa, pb, pc, pd, false);
}

/**
 * lookupQuad for the score at D >= WIDE: the walks also load, below the top two levels, each
 * visited node's box (one word per cache line) and range sum, and at the end each leaf's
 * point. Those loads do not feed the dependent chain, so they fill the cycles it leaves idle,
 * and the ascents and duplicate tests that follow find their data in cache.
 */
export function lookupQuadWithBoxes(
  a: RandomCutTree, b: RandomCutTree, c: RandomCutTree, d: RandomCutTree, q: StaticArray<f32>,
  pa: StaticArray<i32>, pb: StaticArray<i32>, pc: StaticArray<i32>, pd: StaticArray<i32>,
): i32 {
  return walkFour(a, b, c, d, q, pa, pb, pc, pd, true);
}

/** The two lookups above: inlined into each with withBoxes constant, so each is compiled for its own case. */
@inline function walkFour(
  a: RandomCutTree, b: RandomCutTree, c: RandomCutTree, d: RandomCutTree, q: StaticArray<f32>,
  pa: StaticArray<i32>, pb: StaticArray<i32>, pc: StaticArray<i32>, pd: StaticArray<i32>,
  withBoxes: bool,
): i32 {
  const na = a.node;
  const nb = b.node;
  const nc = c.node;
  const nd = d.node;
  const ca = a.cutDim;
  const cb = b.cutDim;
  const cc = c.cutDim;
  const cd = d.cutDim;
  const bytes = <usize>a.dimensions << 3; // one box: 2D floats
  const ba = changetype<usize>(a.box);
  const bb = changetype<usize>(b.box);
  const bc = changetype<usize>(c.box);
  const bd = changetype<usize>(d.box);
  const ra = changetype<usize>(a.boxRange);
  const rb = changetype<usize>(b.boxRange);
  const rc = changetype<usize>(c.boxRange);
  const rd = changetype<usize>(d.boxRange);
  let sink = 0;
  let x = a.root;
  let y = b.root;
  let z = c.root;
  let w = d.root;
  let depth = 0;
  if (a.dimensions == 1) {
    // One coordinate: no cutDim loads in the dependent chain.
    const v = unchecked(q[0]);
    while (x >= 0 && y >= 0 && z >= 0 && w >= 0) {
      unchecked(pa[depth] = x);
      unchecked(pb[depth] = y);
      unchecked(pc[depth] = z);
      unchecked(pd[depth] = w);
      depth++;
      const ax = x << 1;
      const ay = y << 1;
      const az = z << 1;
      const aw = w << 1;
      x = child(unchecked(na[ax + 1]), v > reinterpret<f32>(unchecked(na[ax])));
      y = child(unchecked(nb[ay + 1]), v > reinterpret<f32>(unchecked(nb[ay])));
      z = child(unchecked(nc[az + 1]), v > reinterpret<f32>(unchecked(nc[az])));
      w = child(unchecked(nd[aw + 1]), v > reinterpret<f32>(unchecked(nd[aw])));
    }
  }
  while (x >= 0 && y >= 0 && z >= 0 && w >= 0) {
    unchecked(pa[depth] = x);
    unchecked(pb[depth] = y);
    unchecked(pc[depth] = z);
    unchecked(pd[depth] = w);
    depth++;
    if (withBoxes && depth > 2) {
      sink ^= touchLines(ba + <usize>x * bytes, bytes) ^ load<i32>(ra + (<usize>x << 3));
      sink ^= touchLines(bb + <usize>y * bytes, bytes) ^ load<i32>(rb + (<usize>y << 3));
      sink ^= touchLines(bc + <usize>z * bytes, bytes) ^ load<i32>(rc + (<usize>z << 3));
      sink ^= touchLines(bd + <usize>w * bytes, bytes) ^ load<i32>(rd + (<usize>w << 3));
    }
    const ax = x << 1;
    const ay = y << 1;
    const az = z << 1;
    const aw = w << 1;
    x = child(unchecked(na[ax + 1]), unchecked(q[unchecked(ca[x])]) > reinterpret<f32>(unchecked(na[ax])));
    y = child(unchecked(nb[ay + 1]), unchecked(q[unchecked(cb[y])]) > reinterpret<f32>(unchecked(nb[ay])));
    z = child(unchecked(nc[az + 1]), unchecked(q[unchecked(cc[z])]) > reinterpret<f32>(unchecked(nc[az])));
    w = child(unchecked(nd[aw + 1]), unchecked(q[unchecked(cd[w])]) > reinterpret<f32>(unchecked(nd[aw])));
  }
  // The shortest walk has ended; the others go on in lockstep as long as any is inside.
  let da = depth;
  let db = depth;
  let dc = depth;
  let dd = depth;
  while ((x & y & z & w) >= 0) {
    if (x >= 0) {
      unchecked(pa[da++] = x);
      if (withBoxes) sink ^= touchLines(ba + <usize>x * bytes, bytes) ^ load<i32>(ra + (<usize>x << 3));
      x = child(unchecked(na[(x << 1) + 1]), unchecked(q[unchecked(ca[x])]) > reinterpret<f32>(unchecked(na[x << 1])));
    }
    if (y >= 0) {
      unchecked(pb[db++] = y);
      if (withBoxes) sink ^= touchLines(bb + <usize>y * bytes, bytes) ^ load<i32>(rb + (<usize>y << 3));
      y = child(unchecked(nb[(y << 1) + 1]), unchecked(q[unchecked(cb[y])]) > reinterpret<f32>(unchecked(nb[y << 1])));
    }
    if (z >= 0) {
      unchecked(pc[dc++] = z);
      if (withBoxes) sink ^= touchLines(bc + <usize>z * bytes, bytes) ^ load<i32>(rc + (<usize>z << 3));
      z = child(unchecked(nc[(z << 1) + 1]), unchecked(q[unchecked(cc[z])]) > reinterpret<f32>(unchecked(nc[z << 1])));
    }
    if (w >= 0) {
      unchecked(pd[dd++] = w);
      if (withBoxes) sink ^= touchLines(bd + <usize>w * bytes, bytes) ^ load<i32>(rd + (<usize>w << 3));
      w = child(unchecked(nd[(w << 1) + 1]), unchecked(q[unchecked(cd[w])]) > reinterpret<f32>(unchecked(nd[w << 1])));
    }
  }
  unchecked(pa[da] = x);
  unchecked(pb[db] = y);
  unchecked(pc[dc] = z);
  unchecked(pd[dd] = w);
  quadDepthB = db;
  quadDepthC = dc;
  quadDepthD = dd;
  if (withBoxes) {
    boxSink ^= sink ^ a.leafWord(x) ^ b.leafWord(y) ^ c.leafWord(z) ^ d.leafWord(w);
  }
  return da;
}

// A random cut tree (rcf-algorithm.md §6): struct-of-arrays internal nodes with cached
// bounding boxes, leaves that reference points in the forest's PointStore, index free
// lists, and no parent pointers (a root-to-leaf path is kept while walking instead).
export class RandomCutTree {
  /**
   * Internal node n as two words at [2n]: cutValue (f32 bits), then both children packed as
   * i16 (left low, right high; leaves ~slot, so S <= 4096 fits). Eight bytes per node keep
   * the trees' hot part small, and a lookup step picks a child without branching.
   * A free node's second word is the free-list link.
   */
  readonly node: StaticArray<i32>;
  /** Cut dimension of node n (not read by the one-coordinate loops). */
  readonly cutDim: StaticArray<u16>;
  /** Bounding box of node n at [2Dn]: D minima, then D maxima. */
  readonly box: StaticArray<f32>;
  /**
   * D >= WIDE: per node, the f64 sum over d (in dimension order) of <f64>(max - min), kept with
   * the box. The score ascent needs it at every ancestor; caching it lets that ascent visit
   * only the coordinates where q lies outside the box. Empty for narrower points.
   */
  readonly boxRange: StaticArray<f64>;
  /** Scratch (D >= WIDE): the score ascent's list of 4-coordinate groups still outside the current ancestor's box (byte offsets); during an insert, the random cut's per-dimension gaps (f32). */
  private readonly outside: StaticArray<i32>;
  readonly leafPoint: StaticArray<i32>; // doubles as the free-list link of a free leaf
  readonly leafMass: StaticArray<i32>;
  root: i32 = NONE;
  private freeNode: i32 = 0;
  private freeLeaf: i32 = 0;
  /** Current tree seed (a Java long). */
  seed: i64 = 0;
  private chosenDim: i32 = 0;
  private chosenValue: f32 = 0;
  private boxHoldsPoint: bool = false;
  /** Set by randomCut: the f64 sum of the gaps of the box ∪ p, in dimension order. */
  private cutTotal: f64 = 0;
  private gapRange: f64 = 0;
  private gapDiff: f64 = 0;

  constructor(
    readonly dimensions: i32,
    readonly capacity: i32,
    private readonly store: PointStore,
    private readonly rng: JavaRandom,
    /** Scratch root-to-leaf path shared by the forest's trees (length >= capacity). */
    private readonly path: StaticArray<i32>,
  ) {
    const nodes = capacity - 1;
    this.node = new StaticArray<i32>(2 * nodes);
    this.cutDim = new StaticArray<u16>(nodes);
    this.box = new StaticArray<f32>(2 * nodes * dimensions + (dimensions == 3 ? 1 : 0));
    this.boxRange = new StaticArray<f64>(dimensions >= WIDE ? nodes : 0);
    this.outside = new StaticArray<i32>(dimensions >= WIDE ? dimensions : 0);
    this.leafPoint = new StaticArray<i32>(capacity);
    this.leafMass = new StaticArray<i32>(capacity);
    for (let i = 0; i < nodes; i++) unchecked(this.node[(i << 1) + 1] = i + 1 < nodes ? i + 1 : -1);
    for (let l = 0; l < capacity; l++) unchecked(this.leafPoint[l] = l + 1 < capacity ? l + 1 : -1);
    if (nodes == 0) this.freeNode = -1;
  }

  @inline left(n: i32): i32 {
    return (unchecked(this.node[(n << 1) + 1]) << 16) >> 16;
  }

  @inline right(n: i32): i32 {
    return unchecked(this.node[(n << 1) + 1]) >> 16;
  }

  @inline cutValue(n: i32): f32 {
    return reinterpret<f32>(unchecked(this.node[n << 1]));
  }

  @inline private setChildren(n: i32, left: i32, right: i32): void {
    unchecked(this.node[(n << 1) + 1] = (left & 0xffff) | (right << 16));
  }

  @inline private setLeft(n: i32, c: i32): void {
    this.setChildren(n, c, this.right(n));
  }

  @inline private setRight(n: i32, c: i32): void {
    this.setChildren(n, this.left(n), c);
  }

  private newNode(): i32 {
    const n = this.freeNode;
    this.freeNode = unchecked(this.node[(n << 1) + 1]);
    return n;
  }

  private newLeaf(point: i32): i32 {
    const l = this.freeLeaf;
    this.freeLeaf = unchecked(this.leafPoint[l]);
    unchecked(this.leafPoint[l] = point);
    unchecked(this.leafMass[l] = 1);
    this.store.retain(point);
    return l;
  }

  private freeLeafSlot(l: i32): void {
    this.store.release(unchecked(this.leafPoint[l]));
    unchecked(this.leafPoint[l] = this.freeLeaf);
    this.freeLeaf = l;
  }

  private freeNodeSlot(n: i32): void {
    unchecked(this.node[(n << 1) + 1] = this.freeNode);
    this.freeNode = n;
  }

  /** Restore: a new internal node with the given cut (children linked by linkPreorder). */
  restoreInternal(cutDim: i32, cutValue: f32): i32 {
    const n = this.newNode();
    unchecked(this.cutDim[n] = <u16>cutDim);
    unchecked(this.node[n << 1] = reinterpret<i32>(cutValue));
    return n;
  }

  /** Restore: a new leaf for a stored point, mass 0 until the sampler's entries are counted. */
  restoreLeaf(point: i32): i32 {
    const l = this.newLeaf(point);
    unchecked(this.leafMass[l] = 0);
    return l;
  }

  /** Restore: links codes[0..count) given in preorder (internal ≥ 0, leaf ~slot) and derives every box. */
  linkPreorder(codes: StaticArray<i32>, count: i32, open: StaticArray<i32>): void {
    this.root = count > 0 ? unchecked(codes[0]) : NONE;
    let top = 0; // open[0..top): internal nodes still missing a child, ·2 + (left filled)
    for (let i = 0; i < count; i++) {
      const c = unchecked(codes[i]);
      if (i > 0) {
        const entry = unchecked(open[top - 1]);
        if ((entry & 1) == 0) {
          this.setLeft(entry >> 1, c);
          unchecked(open[top - 1] = entry | 1);
        } else {
          this.setRight(entry >> 1, c);
          top--;
        }
      }
      if (c >= 0) unchecked(open[top++] = c << 1);
    }
    // Reverse preorder visits children before their parents.
    for (let i = count - 1; i >= 0; i--) if (unchecked(codes[i]) >= 0) this.refitBox(unchecked(codes[i]));
  }

  /** Follows cuts from the root to a leaf, recording the path; returns the leaf's depth. */
  lookup(q: StaticArray<f32>, qo: i32): i32 {
    return this.walk(this.path, this.root, 0, q, qo);
  }

  /** Continues a lookup at `node`, already `depth` levels down; returns the leaf's depth. */
  walk(path: StaticArray<i32>, node: i32, depth: i32, q: StaticArray<f32>, qo: i32): i32 {
    const nodes = this.node;
    if (this.dimensions == 1) {
      // One coordinate: no cutDim to load, one dependent load less per level.
      const x = unchecked(q[qo]);
      while (node >= 0) {
        unchecked(path[depth++] = node);
        const at = node << 1;
        node = child(unchecked(nodes[at + 1]), x > reinterpret<f32>(unchecked(nodes[at])));
      }
    } else {
      while (node >= 0) {
        unchecked(path[depth++] = node);
        const at = node << 1;
        node = child(unchecked(nodes[at + 1]), unchecked(q[qo + <i32>unchecked(this.cutDim[node])]) > reinterpret<f32>(unchecked(nodes[at])));
      }
    }
    unchecked(path[depth] = node);
    return depth;
  }

  /** Min of the box of `code` (a leaf's box is its point) in dimension d. */
  @inline private min(code: i32, d: i32): f32 {
    return code < 0
      ? unchecked(this.store.coords[unchecked(this.leafPoint[~code]) * this.dimensions + d])
      : unchecked(this.box[2 * code * this.dimensions + d]);
  }

  @inline private max(code: i32, d: i32): f32 {
    return code < 0
      ? unchecked(this.store.coords[unchecked(this.leafPoint[~code]) * this.dimensions + d])
      : unchecked(this.box[(2 * code + 1) * this.dimensions + d]);
  }

  /**
   * Inserts the stored point `point` (§6.3). Returns the leaf slot that now holds it,
   * which may be an existing leaf with an equal point (a duplicate: no draws).
   */
  insert(point: i32): i32 {
    const D = this.dimensions;
    const coords = this.store.coords;
    const po = point * D;
    if (this.root == NONE) {
      const l = this.newLeaf(point);
      this.root = ~l;
      return l;
    }
    return this.insertAlong(point, this.path, this.lookup(coords, po));
  }

  /** insert() for a non-empty tree whose lookup of the point is already in path (leaf at depth h). */
  insertAlong(point: i32, path: StaticArray<i32>, h: i32): i32 {
    const D = this.dimensions;
    const coords = this.store.coords;
    const po = point * D;
    const leaf = ~unchecked(path[h]);
    if (this.store.equals(unchecked(this.leafPoint[leaf]), coords, po)) {
      unchecked(this.leafMass[leaf] += 1);
      return leaf;
    }

    const rng = this.rng;
    rng.setSeed(this.seed);
    this.seed = rng.nextLong();

    // Walk up from the leaf; the box at each level is that node's own box. The highest
    // separating level wins.
    const wide = D >= WIDE;
    if (wide && levelTotals.length <= h) levelTotals = new StaticArray<f64>(h + 1);
    const totals = levelTotals;
    let cutLevel = -1;
    let cutD = 0;
    let cutV: f32 = 0;
    let level = h;
    for (; ; level--) {
      const code = unchecked(path[level]);
      const r = rng.nextDouble();
      this.randomCut(r, coords, po, code);
      if (wide) unchecked(totals[level] = this.cutTotal);
      const d = this.chosenDim;
      const v = this.chosenValue;
      const pd = unchecked(coords[po + d]);
      if ((pd <= v && v < this.min(code, d)) || (pd > v && v >= this.max(code, d))) {
        cutLevel = level;
        cutD = d;
        cutV = v;
      }
      if (level == 0 || this.boxHoldsPoint) break;
    }
    // Boxes at levels [0, holdLevel] already hold p; those below it do not.
    const holdLevel = this.boxHoldsPoint ? level : -1;

    // Splice a new internal node above the chosen subtree.
    const sub = unchecked(path[cutLevel]);
    const leafNew = this.newLeaf(point);
    const node = this.newNode();
    unchecked(this.cutDim[node] = <u16>cutD);
    unchecked(this.node[node << 1] = reinterpret<i32>(cutV));
    if (unchecked(coords[po + cutD]) <= cutV) this.setChildren(node, ~leafNew, sub);
    else this.setChildren(node, sub, ~leafNew);
    const base = 2 * node * D;
    let d = 0;
    if (D >= 4) {
      const sa = sub < 0 ? coords : this.box;
      const sl = sub < 0 ? unchecked(this.leafPoint[~sub]) * D : 2 * sub * D;
      const sh = sub < 0 ? sl : sl + D;
      for (; d + 4 <= D; d += 4) {
        const x = v128.load(at(coords, po + d));
        const a = f32x4.pmin(v128.load(at(sa, sl + d)), x);
        const b = f32x4.pmax(v128.load(at(sa, sh + d)), x);
        v128.store(at(this.box, base + d), a);
        v128.store(at(this.box, base + D + d), b);
      }
    }
    for (; d < D; d++) {
      const x = unchecked(coords[po + d]);
      const lo = this.min(sub, d);
      const hi = this.max(sub, d);
      const a = x < lo ? x : lo;
      const b = x > hi ? x : hi;
      unchecked(this.box[base + d] = a);
      unchecked(this.box[base + D + d] = b);
    }
    // The new node's box is the cut's box at cutLevel, sub's box ∪ p: its range sum is that
    // cut's total.
    if (wide) unchecked(this.boxRange[node] = unchecked(totals[cutLevel]));
    if (cutLevel == 0) {
      this.root = node;
    } else {
      const parent = unchecked(path[cutLevel - 1]);
      if (this.left(parent) == sub) this.setLeft(parent, node);
      else this.setRight(parent, node);
      // Grow the ancestors' boxes that do not hold p yet (each was a cut's box, so at
      // D >= WIDE its new range sum is that cut's total).
      for (let l = cutLevel - 1; l > holdLevel; l--) {
        const a = unchecked(path[l]);
        this.growBox(a, coords, po);
        if (wide) unchecked(this.boxRange[a] = unchecked(totals[l]));
      }
    }
    return leafNew;
  }

  /**
   * randomCut(r, p, X) of §6.3 step 4 with X the box of `code`; sets chosenDim/Value, and
   * boxHoldsPoint (X contains p), which the first pass finds for free.
   */
  private randomCut(r: f64, p: StaticArray<f32>, po: i32, code: i32): void {
    const D = this.dimensions;
    // The box's minima at arr[lo..] and maxima at arr[hi..]: a leaf's box is its point.
    const arr = code < 0 ? this.store.coords : this.box;
    const lo0 = code < 0 ? unchecked(this.leafPoint[~code]) * D : 2 * code * D;
    const hi0 = code < 0 ? lo0 : lo0 + D;
    let total: f64 = 0;
    let inside = true;
    let d = 0;
    if (D >= WIDE) {
      // The first pass keeps each dimension's gap (hi - lo, f32) in the score's scratch list
      // (not in use during an insert), so the second pass reads one float per dimension
      // instead of recomputing it from three loads; the sums are the same values in order.
      const gaps = changetype<usize>(this.outside);
      let holds = i32x4.splat(-1);
      for (; d + 4 <= D; d += 4) {
        const x = v128.load(at(p, po + d));
        const a = v128.load(at(arr, lo0 + d));
        const b = v128.load(at(arr, hi0 + d));
        holds = v128.and(holds, v128.and(f32x4.ge(x, a), f32x4.le(x, b)));
        const g = f32x4.sub(f32x4.pmax(b, x), f32x4.pmin(a, x));
        v128.store(gaps + (<usize>d << 2), g);
        total = addLanes(total, g);
      }
      inside = i32x4.all_true(holds);
      for (; d < D; d++) {
        const x = unchecked(p[po + d]);
        const a = unchecked(arr[lo0 + d]);
        const b = unchecked(arr[hi0 + d]);
        inside = inside && x >= a && x <= b;
        const lo = x < a ? x : a;
        const hi = x > b ? x : b;
        const g = hi - lo;
        store<f32>(gaps + (<usize>d << 2), g);
        total += <f64>g;
      }
      this.boxHoldsPoint = inside;
      this.cutTotal = total;
      let t = r * total;
      // Whole groups first: where t exceeds the group's gap sum by a margin far above every
      // rounding error (2^-48 relative against at most 4·2^-53 lost by the four subtractions),
      // t stays above each of its gaps, so none is chosen and only the four subtractions
      // remain, in order, as below.
      for (d = 0; d + 4 <= D; d += 4) {
        const w = v128.load(gaps + (<usize>d << 2));
        const a = f64x2.promote_low_f32x4(w);
        const b = f64x2.promote_low_f32x4(i32x4.shuffle(w, w, 2, 3, 2, 3));
        const g0 = f64x2.extract_lane(a, 0);
        const g1 = f64x2.extract_lane(a, 1);
        const g2 = f64x2.extract_lane(b, 0);
        const g3 = f64x2.extract_lane(b, 1);
        if (!(t * 0.9999999999999964 > (g0 + g1 + (g2 + g3)) * 1.0000000000000036)) break;
        t = t - g0 - g1 - g2 - g3;
      }
      for (; d < D; d++) {
        const g = <f64>load<f32>(gaps + (<usize>d << 2));
        if (t <= g && g > 0) {
          const x = unchecked(p[po + d]);
          const a = unchecked(arr[lo0 + d]);
          const b = unchecked(arr[hi0 + d]);
          const lo = x < a ? x : a;
          const hi = x > b ? x : b;
          let v = <f32>(<f64>lo + t);
          if (v >= hi) v = nextDown(hi);
          this.chosenDim = d;
          this.chosenValue = v;
          return;
        }
        t -= g;
      }
      this.fallbackCut(r, p, po, code);
      return;
    }
    if (D >= 4) {
      let holds = i32x4.splat(-1);
      for (; d + 4 <= D; d += 4) {
        const x = v128.load(at(p, po + d));
        const a = v128.load(at(arr, lo0 + d));
        const b = v128.load(at(arr, hi0 + d));
        holds = v128.and(holds, v128.and(f32x4.ge(x, a), f32x4.le(x, b)));
        total = addLanes(total, f32x4.sub(f32x4.pmax(b, x), f32x4.pmin(a, x)));
      }
      inside = i32x4.all_true(holds);
    }
    for (; d < D; d++) {
      const x = unchecked(p[po + d]);
      const a = unchecked(arr[lo0 + d]);
      const b = unchecked(arr[hi0 + d]);
      inside = inside && x >= a && x <= b;
      const lo = x < a ? x : a;
      const hi = x > b ? x : b;
      total += <f64>(hi - lo);
    }
    this.boxHoldsPoint = inside;
    let t = r * total;
    for (let d = 0; d < D; d++) {
      const x = unchecked(p[po + d]);
      const a = unchecked(arr[lo0 + d]);
      const b = unchecked(arr[hi0 + d]);
      const lo = x < a ? x : a;
      const hi = x > b ? x : b;
      const g = <f64>(hi - lo);
      if (t <= g && g > 0) {
        let v = <f32>(<f64>lo + t);
        if (v >= hi) v = nextDown(hi);
        this.chosenDim = d;
        this.chosenValue = v;
        return;
      }
      t -= g;
    }
    this.fallbackCut(r, p, po, code);
  }

  /** Reached only when rounding leaves t above every gap (r extremely close to 1). */
  private fallbackCut(r: f64, p: StaticArray<f32>, po: i32, code: i32): void {
    const D = this.dimensions;
    const rng = this.rng;
    rng.setSeed(<i64>(r * 4611686018427387904.0)); // r·2^62, exact
    const ascending = rng.nextDouble() < 0.5;
    for (let k = 0; k < D; k++) {
      const d = ascending ? k : D - 1 - k;
      const v = unchecked(p[po + d]);
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
    unreachable();
  }

  /** box ← box ∪ {p} (at D >= WIDE the caller sets its range sum). */
  private growBox(node: i32, p: StaticArray<f32>, po: i32): void {
    const D = this.dimensions;
    const base = 2 * node * D;
    const box = this.box;
    let d = 0;
    for (; d + 4 <= D; d += 4) {
      const x = v128.load(at(p, po + d));
      v128.store(at(box, base + d), f32x4.pmin(v128.load(at(box, base + d)), x));
      v128.store(at(box, base + D + d), f32x4.pmax(v128.load(at(box, base + D + d)), x));
    }
    for (; d < D; d++) {
      const x = unchecked(p[po + d]);
      if (x < unchecked(box[base + d])) unchecked(box[base + d] = x);
      if (x > unchecked(box[base + D + d])) unchecked(box[base + D + d] = x);
    }
  }

  /** box(node) ← box(left) ∪ box(right); false when nothing changed. */
  private refitBox(node: i32): bool {
    const D = this.dimensions;
    const base = 2 * node * D;
    const l = this.left(node);
    const r = this.right(node);
    const coords = this.store.coords;
    const la = l < 0 ? coords : this.box;
    const ll = l < 0 ? unchecked(this.leafPoint[~l]) * D : 2 * l * D;
    const lh = l < 0 ? ll : ll + D;
    const ra = r < 0 ? coords : this.box;
    const rl = r < 0 ? unchecked(this.leafPoint[~r]) * D : 2 * r * D;
    const rh = r < 0 ? rl : rl + D;
    let changed = false;
    let range: f64 = 0;
    let d = 0;
    const box = this.box;
    if (D >= 4) {
      let differs = i32x4.splat(0);
      for (; d + 4 <= D; d += 4) {
        const lo = f32x4.pmin(v128.load(at(ra, rl + d)), v128.load(at(la, ll + d)));
        const hi = f32x4.pmax(v128.load(at(ra, rh + d)), v128.load(at(la, lh + d)));
        const oldLo = v128.load(at(box, base + d));
        const oldHi = v128.load(at(box, base + D + d));
        // Lanes that compare equal keep their old bits (a signed zero), as in the scalar loop.
        const neLo = f32x4.ne(lo, oldLo);
        const neHi = f32x4.ne(hi, oldHi);
        v128.store(at(box, base + d), v128.bitselect(lo, oldLo, neLo));
        v128.store(at(box, base + D + d), v128.bitselect(hi, oldHi, neHi));
        differs = v128.or(differs, v128.or(neLo, neHi));
        range = addLanes(range, f32x4.sub(hi, lo));
      }
      changed = v128.any_true(differs);
    }
    for (; d < D; d++) {
      const a = unchecked(la[ll + d]);
      const b = unchecked(ra[rl + d]);
      const lo = a < b ? a : b;
      const c = unchecked(la[lh + d]);
      const e = unchecked(ra[rh + d]);
      const hi = c > e ? c : e;
      range += <f64>(hi - lo);
      if (lo != unchecked(this.box[base + d])) {
        unchecked(this.box[base + d] = lo);
        changed = true;
      }
      if (hi != unchecked(this.box[base + D + d])) {
        unchecked(this.box[base + D + d] = hi);
        changed = true;
      }
    }
    if (D >= WIDE) unchecked(this.boxRange[node] = range);
    return changed;
  }

  /** Removes one reference to the point of leaf `leaf` (§6.4). */
  delete(leaf: i32): void {
    const mass = unchecked(this.leafMass[leaf]) - 1;
    unchecked(this.leafMass[leaf] = mass);
    if (mass > 0) return;
    const coords = this.store.coords;
    const po = unchecked(this.leafPoint[leaf]) * this.dimensions;
    const path = this.path;
    const h = this.lookup(coords, po);
    assert(unchecked(path[h]) == ~leaf, 'evicted point not found');
    this.freeLeafSlot(leaf);
    if (h == 0) {
      this.root = NONE;
      return;
    }
    const parent = unchecked(path[h - 1]);
    const sibling = this.left(parent) == ~leaf ? this.right(parent) : this.left(parent);
    this.freeNodeSlot(parent);
    if (h == 1) {
      this.root = sibling;
      return;
    }
    const grand = unchecked(path[h - 2]);
    if (this.left(grand) == parent) this.setLeft(grand, sibling);
    else this.setRight(grand, sibling);
    for (let level = h - 2; level >= 0; level--) {
      if (!this.refitBox(unchecked(path[level]))) break;
    }
  }

  /** The first word of the point of leaf code `leaf` (~slot), for lookupQuad's loads. */
  @inline leafWord(leaf: i32): i32 {
    return reinterpret<i32>(unchecked(this.store.coords[unchecked(this.leafPoint[~leaf]) * this.dimensions]));
  }

  /** Per-tree anomaly score of q with tree mass `mass` (§7.1). */
  score(q: StaticArray<f32>, mass: i32, ln: StaticArray<f64>): f64 {
    return this.scoreAlong(this.path, this.lookup(q, 0), q, mass, ln);
  }

  /** The score of q given its root-to-leaf path (from walk) and leaf depth h. */
  scoreAlong(path: StaticArray<i32>, h: i32, q: StaticArray<f32>, mass: i32, ln: StaticArray<f64>): f64 {
    const D = this.dimensions;
    const leaf = ~unchecked(path[h]);
    let s: f64;
    if (this.store.equals(unchecked(this.leafPoint[leaf]), q, 0)) {
      const m = unchecked(this.leafMass[leaf]);
      s = (1.0 - <f64>m / (2.0 * <f64>mass)) * (1.0 / (<f64>h + unchecked(ln[m + 1]) / LN2));
    } else if (D == 1) {
      // The same arithmetic as below with the one-coordinate loops unrolled away.
      s = unchecked(INVERSE_DEPTH[h]);
      const box = this.box;
      const x = unchecked(q[0]);
      for (let j = h - 1; j >= 0; j--) {
        const base = unchecked(path[j]) << 1;
        const lo = unchecked(box[base]);
        const hi = unchecked(box[base + 1]);
        const gb = lo - x;
        const ga = x - hi;
        const out = <f64>(ga > 0 ? ga : <f32>0) + <f64>(gb > 0 ? gb : <f32>0);
        if (out == 0) break;
        const pr = out / (<f64>(hi - lo) + out);
        s = pr * unchecked(INVERSE_DEPTH[j]) + (1.0 - pr) * s;
      }
    } else if (D == 4) {
      // One vector per box half; the three sums still add lane by lane, in order.
      s = unchecked(INVERSE_DEPTH[h]);
      const box = this.box;
      const x = v128.load(at(q, 0));
      const zero = f32x4.splat(0);
      for (let j = h - 1; j >= 0; j--) {
        const base = unchecked(path[j]) << 3;
        const lo = v128.load(at(box, base));
        const hi = v128.load(at(box, base + 4));
        // pmax(0, g) is `g > 0 ? g : 0` lane by lane.
        const gb = f32x4.pmax(zero, f32x4.sub(lo, x));
        const ga = f32x4.pmax(zero, f32x4.sub(x, hi));
        const sums = addPairs(f64x2.splat(0), gb, ga);
        const out = f64x2.extract_lane(sums, 1) + f64x2.extract_lane(sums, 0);
        if (out == 0) break;
        const pr = out / (addLanes(0, f32x4.sub(hi, lo)) + out);
        s = pr * unchecked(INVERSE_DEPTH[j]) + (1.0 - pr) * s;
      }
    } else if (D == 3) {
      // As D = 4 with the fourth lane ignored (the box array has a spare float at its end,
      // so the load of the last node's maxima stays inside it).
      s = unchecked(INVERSE_DEPTH[h]);
      const box = this.box;
      const x = f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(unchecked(q[0])), 1, unchecked(q[1])), 2, unchecked(q[2]));
      const zero = f32x4.splat(0);
      for (let j = h - 1; j >= 0; j--) {
        const base = unchecked(path[j]) * 6;
        const lo = v128.load(at(box, base));
        const hi = v128.load(at(box, base + 3));
        const gb = f32x4.pmax(zero, f32x4.sub(lo, x));
        const ga = f32x4.pmax(zero, f32x4.sub(x, hi));
        const out = addLanes3(0, ga) + addLanes3(0, gb);
        if (out == 0) break;
        const pr = out / (addLanes3(0, f32x4.sub(hi, lo)) + out);
        s = pr * unchecked(INVERSE_DEPTH[j]) + (1.0 - pr) * s;
      }
    } else if (D < WIDE) {
      s = unchecked(INVERSE_DEPTH[h]);
      const box = this.box;
      for (let j = h - 1; j >= 0; j--) {
        const node = unchecked(path[j]);
        const base = 2 * node * D;
        // Three sums in one pass; each still adds in dimension order.
        let below: f64 = 0;
        let above: f64 = 0;
        let range: f64 = 0;
        for (let d = 0; d < D; d++) {
          const lo = unchecked(box[base + d]);
          const hi = unchecked(box[base + D + d]);
          const x = unchecked(q[d]);
          const gb = lo - x;
          const ga = x - hi;
          below += <f64>(gb > 0 ? gb : <f32>0);
          above += <f64>(ga > 0 ? ga : <f32>0);
          range += <f64>(hi - lo);
        }
        const out = above + below;
        if (out == 0) break;
        const pr = out / (range + out);
        s = pr * unchecked(INVERSE_DEPTH[j]) + (1.0 - pr) * s;
      }
    } else {
      // Ancestors' boxes nest, so once q[d] lies inside one it lies inside all above: the
      // below/above sums need only the coordinates still outside, four at a time (lanes
      // already inside add +0, which changes no sum), and the range sum comes from the
      // cache. outside[] lists the 4-coordinate groups with a lane still outside; the last
      // D mod 4 coordinates (tail bits) go one by one, after the groups, as in the scalar order.
      s = unchecked(INVERSE_DEPTH[h]);
      const box = this.box;
      const outside = this.outside;
      const ranges = this.boxRange;
      const zero = f32x4.splat(0);
      const D4 = D & ~3;
      let ng = 0;
      let tail = (1 << (D - D4)) - 1;
      // Byte addresses, and byte offsets in the list, keep each load to one address add.
      const qp = changetype<usize>(q);
      const list = changetype<usize>(outside);
      const boxes = changetype<usize>(box);
      const half = <usize>D << 2;
      // Two levels per pass over the list: level j (box A) and its parent j - 1 (box B,
      // which holds A, so a lane outside B is outside A). Each level's sums still add the
      // listed groups in order (groups inside add +0), the list kept is B's, and the levels
      // update s one after the other as before; at the root, B is A again and is not used.
      // Half the passes means half the list loops' unpredictable exits.
      for (let j = h - 1; j >= 0; j -= 2) {
        const nodeA = unchecked(path[j]);
        const nodeB = j > 0 ? unchecked(path[j - 1]) : nodeA;
        const la = boxes + <usize>nodeA * (half << 1);
        const ha = la + half;
        const lb = boxes + <usize>nodeB * (half << 1);
        const hb = lb + half;
        // Lane 0 sums below, lane 1 above, each in dimension order.
        let sa = f64x2.splat(0);
        let sb = f64x2.splat(0);
        let m = 0;
        if (j == h - 1) {
          const end = <usize>D4 << 2;
          for (let o: usize = 0; o < end; o += 16) {
            const x = v128.load(qp + o);
            const gba = f32x4.pmax(zero, f32x4.sub(v128.load(la + o), x));
            const gaa = f32x4.pmax(zero, f32x4.sub(x, v128.load(ha + o)));
            const gbb = f32x4.pmax(zero, f32x4.sub(v128.load(lb + o), x));
            const gab = f32x4.pmax(zero, f32x4.sub(x, v128.load(hb + o)));
            sa = addPairs(sa, gba, gaa);
            sb = addPairs(sb, gbb, gab);
            // No branch: the group stays listed only if a lane is out of B (the gaps are +0
            // or positive: a lane of gb | ga above 0 is outside).
            store<i32>(list + (<usize>m << 2), <i32>o);
            m += (i32x4.bitmask(f32x4.gt(v128.or(gbb, gab), zero)) + 15) >> 4;
          }
        } else {
          const end = list + (<usize>ng << 2);
          for (let e = list; e < end; e += 4) {
            const o = <usize>load<i32>(e);
            const x = v128.load(qp + o);
            const gba = f32x4.pmax(zero, f32x4.sub(v128.load(la + o), x));
            const gaa = f32x4.pmax(zero, f32x4.sub(x, v128.load(ha + o)));
            const gbb = f32x4.pmax(zero, f32x4.sub(v128.load(lb + o), x));
            const gab = f32x4.pmax(zero, f32x4.sub(x, v128.load(hb + o)));
            sa = addPairs(sa, gba, gaa);
            sb = addPairs(sb, gbb, gab);
            store<i32>(list + (<usize>m << 2), <i32>o);
            m += (i32x4.bitmask(f32x4.gt(v128.or(gbb, gab), zero)) + 15) >> 4;
          }
        }
        ng = m;
        let belowA = f64x2.extract_lane(sa, 0);
        let aboveA = f64x2.extract_lane(sa, 1);
        let belowB = f64x2.extract_lane(sb, 0);
        let aboveB = f64x2.extract_lane(sb, 1);
        if (tail != 0) {
          let t = tail;
          tail = 0;
          while (t != 0) {
            const i = ctz(t);
            t &= t - 1;
            const d = D4 + i;
            const y = unchecked(q[d]);
            const off = <usize>d << 2;
            const gba = load<f32>(la + off) - y;
            const gaa = y - load<f32>(ha + off);
            if (gba > 0) belowA += <f64>gba;
            if (gaa > 0) aboveA += <f64>gaa;
            const gbb = load<f32>(lb + off) - y;
            const gab = y - load<f32>(hb + off);
            if (gbb > 0) belowB += <f64>gbb;
            if (gab > 0) aboveB += <f64>gab;
            if (gbb > 0 || gab > 0) tail |= 1 << i;
          }
        }
        const outA = aboveA + belowA;
        if (outA == 0) break;
        const prA = outA / (unchecked(ranges[nodeA]) + outA);
        s = prA * unchecked(INVERSE_DEPTH[j]) + (1.0 - prA) * s;
        if (j == 0) break;
        const outB = aboveB + belowB;
        if (outB == 0) break;
        const prB = outB / (unchecked(ranges[nodeB]) + outB);
        s = prB * unchecked(INVERSE_DEPTH[j - 1]) + (1.0 - prB) * s;
      }
    }
    return (s * unchecked(ln[mass + 1])) / LN2;
  }

  /**
   * The gap routine of §7.3 for the box with minima at b[lo..] and maxima at b[hi..]: per dimension the f64
   * distances by which q lies above and below it, plus newRange and diffSum.
   */
  private gap(q: StaticArray<f32>, b: StaticArray<f32>, lo: i32, hi: i32, up: StaticArray<f64>, dn: StaticArray<f64>): void {
    let newRange: f64 = 0;
    let diffSum: f64 = 0;
    for (let d = 0; d < this.dimensions; d++) {
      const x = unchecked(q[d]);
      const bmin = unchecked(b[lo + d]);
      const bmax = unchecked(b[hi + d]);
      const low = bmin < x ? bmin : x;
      const high = bmax > x ? bmax : x;
      newRange += <f64>(high - low);
      const u0 = <f64>high - <f64>bmax;
      const w0 = <f64>bmin - <f64>low;
      const u = u0 > 0 ? u0 : 0.0;
      const w = w0 > 0 ? w0 : 0.0;
      if (u + w > 0) {
        diffSum += w + u;
        unchecked(up[d] = u);
        unchecked(dn[d] = w);
      } else {
        unchecked(up[d] = 0);
        unchecked(dn[d] = 0);
      }
    }
    this.gapRange = newRange;
    this.gapDiff = diffSum;
  }

  /**
   * Per-tree attribution of q (§7.3), written to high/low (length D), already scaled by
   * LN[M+1]/ln2. shadow is a 2D-length scratch box.
   */
  attribution(
    q: StaticArray<f32>, mass: i32, ln: StaticArray<f64>,
    high: StaticArray<f64>, low: StaticArray<f64>, up: StaticArray<f64>, dn: StaticArray<f64>,
    shadow: StaticArray<f32>,
  ): void {
    const D = this.dimensions;
    const path = this.path;
    const h = this.lookup(q, 0);
    const leaf = ~unchecked(path[h]);
    const coords = this.store.coords;
    const po = unchecked(this.leafPoint[leaf]) * D;
    this.gap(q, coords, po, po, up, dn);
    const dup = this.gapRange <= 0;
    let saved: f64;
    if (dup) {
      const m = unchecked(this.leafMass[leaf]);
      saved = (1.0 - <f64>m / (2.0 * <f64>mass)) * (1.0 / (<f64>h + unchecked(ln[m + 1]) / LN2));
      const share = saved / <f64>(2 * D);
      for (let d = 0; d < D; d++) {
        unchecked(high[d] = share);
        unchecked(low[d] = share);
      }
    } else {
      saved = 1.0 / <f64>(h + 1);
      const range = this.gapRange;
      for (let d = 0; d < D; d++) {
        unchecked(high[d] = (saved * up[d]) / range);
        unchecked(low[d] = (saved * dn[d]) / range);
      }
    }
    for (let j = h - 1; j >= 0; j--) {
      const node = unchecked(path[j]);
      if (dup) {
        // Shadow box: the boxes of the siblings along the path, merged (the path minus q).
        const child = unchecked(path[j + 1]);
        const sib = this.left(node) == child ? this.right(node) : this.left(node);
        for (let d = 0; d < D; d++) {
          const a = this.min(sib, d);
          const b = this.max(sib, d);
          if (j == h - 1) {
            unchecked(shadow[d] = a);
            unchecked(shadow[D + d] = b);
          } else {
            if (a < unchecked(shadow[d])) unchecked(shadow[d] = a);
            if (b > unchecked(shadow[D + d])) unchecked(shadow[D + d] = b);
          }
        }
        this.gap(q, shadow, 0, D, up, dn);
      } else {
        this.gap(q, this.box, 2 * node * D, (2 * node + 1) * D, up, dn);
      }
      const range = this.gapRange;
      const p = this.gapDiff / range;
      const inside = !(p > 0);
      if (!inside) {
        const ns = 1.0 / <f64>(j + 1);
        const keep = 1.0 - p;
        for (let d = 0; d < D; d++) {
          unchecked(high[d] = (up[d] / range) * ns + keep * high[d]);
          unchecked(low[d] = (dn[d] / range) * ns + keep * low[d]);
        }
      }
      if (dup && (inside || j == 0)) {
        let norm: f64 = 0;
        for (let d = 0; d < D; d++) norm += unchecked(high[d]) + unchecked(low[d]);
        if (norm > 0) {
          const f = saved / norm;
          for (let d = 0; d < D; d++) {
            unchecked(high[d] *= f);
            unchecked(low[d] *= f);
          }
        }
      }
      if (inside) break;
    }
    const scale = unchecked(ln[mass + 1]);
    for (let d = 0; d < D; d++) {
      unchecked(high[d] = (high[d] * scale) / LN2);
      unchecked(low[d] = (low[d] * scale) / LN2);
    }
  }

  memoryBytes(): i32 {
    const nodes = this.capacity - 1;
    const D = this.dimensions;
    return nodes * (10 + 8 * D + (D >= WIDE ? 8 : 0)) + this.capacity * 8 + (D >= WIDE ? 4 * D : 0) + (D == 3 ? 4 : 0);
  }
}
