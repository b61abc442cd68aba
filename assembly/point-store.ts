import { noteGarbage } from './garbage';

// The forest's shared store of distinct f32 points with reference counts (one per leaf
// holding the point). Free slots are linked through their reference count (-2 - next), so
// the store costs no extra word per slot. Grows by half up to the worst case, so small
// forests stay small.

export class PointStore {
  coords: StaticArray<f32>;
  refCount: StaticArray<i32>;
  private freeHead: i32 = -1;
  capacity: i32 = 0;
  private inUse: i32 = 0;

  constructor(readonly dimensions: i32, initialCapacity: i32, readonly maxCapacity: i32) {
    const cap = max(1, min(initialCapacity, maxCapacity));
    this.coords = new StaticArray<f32>(cap * dimensions);
    this.refCount = new StaticArray<i32>(cap);
    this.linkFree(0, cap);
  }

  /** Puts slots [from, to) on the free list, lowest first out. */
  private linkFree(from: i32, to: i32): void {
    for (let i = to - 1; i >= from; i--) {
      unchecked(this.refCount[i] = -2 - this.freeHead);
      this.freeHead = i;
    }
    this.capacity = to;
  }

  private grow(): void {
    const cap = min(this.capacity + max(16, this.capacity >> 1), this.maxCapacity);
    assert(cap > this.capacity, 'point store capacity exhausted');
    const d = this.dimensions;
    const coords = new StaticArray<f32>(cap * d);
    memory.copy(changetype<usize>(coords), changetype<usize>(this.coords), <usize>(this.capacity * d) << 2);
    const refCount = new StaticArray<i32>(cap);
    memory.copy(changetype<usize>(refCount), changetype<usize>(this.refCount), <usize>this.capacity << 2);
    this.coords = coords;
    this.refCount = refCount;
    noteGarbage(<usize>this.capacity * <usize>(d + 1) << 2); // the old arrays
    this.linkFree(this.capacity, cap);
  }

  /** Copies D values from src into a new slot with no references yet. */
  add(src: StaticArray<f32>): i32 {
    if (this.freeHead < 0) this.grow();
    const slot = this.freeHead;
    this.freeHead = -2 - unchecked(this.refCount[slot]);
    const d = this.dimensions;
    memory.copy(changetype<usize>(this.coords) + (<usize>(slot * d) << 2), changetype<usize>(src), <usize>d << 2);
    unchecked(this.refCount[slot] = 0);
    this.inUse++;
    return slot;
  }

  @inline retain(slot: i32): void {
    unchecked(this.refCount[slot] += 1);
  }

  private free(slot: i32): void {
    unchecked(this.refCount[slot] = -2 - this.freeHead);
    this.freeHead = slot;
    this.inUse--;
  }

  /** Drops one reference; frees the slot when none remain. */
  release(slot: i32): void {
    const c = unchecked(this.refCount[slot]) - 1;
    unchecked(this.refCount[slot] = c);
    if (c == 0) this.free(slot);
  }

  /** Frees a slot that never gained a reference (a candidate no tree kept). */
  discardIfUnused(slot: i32): void {
    if (unchecked(this.refCount[slot]) == 0) this.free(slot);
  }

  get slotsInUse(): i32 {
    return this.inUse;
  }

  equals(slot: i32, q: StaticArray<f32>, qo: i32): bool {
    const d = this.dimensions;
    const base = slot * d;
    const c = this.coords;
    for (let i = 0; i < d; i++) if (unchecked(c[base + i]) != unchecked(q[qo + i])) return false;
    return true;
  }

  memoryBytes(): i32 {
    return this.capacity * (this.dimensions + 1) * 4;
  }
}
