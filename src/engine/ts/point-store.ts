/**
 * The forest's shared store of distinct points (float32 D-vectors) with reference counts.
 * A reference is held by each tree leaf that stores the point; a slot returns to the
 * free list when its last leaf goes. Free slots are linked through their reference count
 * (-2 - next), so the store costs no extra word per slot. Capacity grows on demand (by
 * half) up to the worst case: every leaf of every tree distinct, plus the point being
 * inserted.
 */
export class PointStore {
  coords: Float32Array;
  refCount: Int32Array;
  private freeHead = -1;
  private capacity = 0;
  private inUse = 0;

  constructor(readonly dimensions: number, initialCapacity: number, readonly maxCapacity: number) {
    const cap = Math.max(1, Math.min(initialCapacity, maxCapacity));
    this.coords = new Float32Array(cap * dimensions);
    this.refCount = new Int32Array(cap);
    this.linkFree(0, cap);
  }

  /** Puts slots [from, to) on the free list, lowest first out. */
  private linkFree(from: number, to: number): void {
    for (let i = to - 1; i >= from; i--) {
      this.refCount[i] = -2 - this.freeHead;
      this.freeHead = i;
    }
    this.capacity = to;
  }

  private grow(): void {
    const cap = Math.min(this.capacity + Math.max(16, this.capacity >> 1), this.maxCapacity);
    if (cap <= this.capacity) throw new Error('PointStore: capacity exhausted (internal invariant broken)');
    const coords = new Float32Array(cap * this.dimensions);
    coords.set(this.coords);
    const refCount = new Int32Array(cap);
    refCount.set(this.refCount);
    this.coords = coords;
    this.refCount = refCount;
    this.linkFree(this.capacity, cap);
  }

  /** Copies D values from `src` at `offset` into a new slot with no references yet. */
  add(src: Float32Array, offset: number): number {
    if (this.freeHead < 0) this.grow();
    const slot = this.freeHead;
    this.freeHead = -2 - this.refCount[slot]!;
    const d = this.dimensions;
    // A plain loop: a subarray view would be one allocation per update.
    const coords = this.coords;
    const base = slot * d;
    for (let i = 0; i < d; i++) coords[base + i] = src[offset + i]!;
    this.refCount[slot] = 0;
    this.inUse++;
    return slot;
  }

  retain(slot: number): void {
    this.refCount[slot]!++;
  }

  private free(slot: number): void {
    this.refCount[slot] = -2 - this.freeHead;
    this.freeHead = slot;
    this.inUse--;
  }

  /** Drops one reference; frees the slot when none remain. */
  release(slot: number): void {
    if (--this.refCount[slot]! === 0) this.free(slot);
  }

  /** Frees a slot that never gained a reference (a candidate no tree kept). */
  discardIfUnused(slot: number): void {
    if (this.refCount[slot] === 0) this.free(slot);
  }

  get slotsInUse(): number {
    return this.inUse;
  }

  get slotCapacity(): number {
    return this.capacity;
  }

  equals(slot: number, q: Float32Array, qOffset: number): boolean {
    const d = this.dimensions;
    const c = this.coords;
    const base = slot * d;
    for (let i = 0; i < d; i++) if (c[base + i] !== q[qOffset + i]) return false;
    return true;
  }
}
