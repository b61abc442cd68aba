// The forest's shared store of distinct f32 points with reference counts (one per leaf
// holding the point). Grows by doubling up to the worst case, so small forests stay small.

export class PointStore {
  coords: StaticArray<f32>;
  refCount: StaticArray<i32>;
  private free: StaticArray<i32>; // stack of free slots
  private freeTop: i32 = 0;
  capacity: i32 = 0;
  /** Set when a growth left old arrays behind for the collector. */
  grew: bool = false;

  constructor(readonly dimensions: i32, initialCapacity: i32, readonly maxCapacity: i32) {
    const cap = max(1, min(initialCapacity, maxCapacity));
    this.coords = new StaticArray<f32>(cap * dimensions);
    this.refCount = new StaticArray<i32>(cap);
    this.free = new StaticArray<i32>(cap);
    this.pushFree(0, cap);
  }

  private pushFree(from: i32, to: i32): void {
    // Highest index at the bottom, so slots are handed out in ascending order.
    for (let i = to - 1; i >= from; i--) unchecked(this.free[this.freeTop++] = i);
    this.capacity = to;
  }

  private grow(): void {
    const cap = min(this.capacity * 2, this.maxCapacity);
    const d = this.dimensions;
    const coords = new StaticArray<f32>(cap * d);
    memory.copy(changetype<usize>(coords), changetype<usize>(this.coords), <usize>(this.capacity * d) << 2);
    const refCount = new StaticArray<i32>(cap);
    memory.copy(changetype<usize>(refCount), changetype<usize>(this.refCount), <usize>this.capacity << 2);
    this.coords = coords;
    this.refCount = refCount;
    this.free = new StaticArray<i32>(cap);
    this.freeTop = 0;
    this.pushFree(this.capacity, cap);
    this.grew = true;
  }

  /** Copies D values from src into a new slot with no references yet. */
  add(src: StaticArray<f32>): i32 {
    if (this.freeTop == 0) this.grow();
    const slot = unchecked(this.free[--this.freeTop]);
    const d = this.dimensions;
    memory.copy(changetype<usize>(this.coords) + (<usize>(slot * d) << 2), changetype<usize>(src), <usize>d << 2);
    unchecked(this.refCount[slot] = 0);
    return slot;
  }

  @inline retain(slot: i32): void {
    unchecked(this.refCount[slot] += 1);
  }

  /** Drops one reference; frees the slot when none remain. */
  release(slot: i32): void {
    const c = unchecked(this.refCount[slot]) - 1;
    unchecked(this.refCount[slot] = c);
    if (c == 0) unchecked(this.free[this.freeTop++] = slot);
  }

  /** Frees a slot that never gained a reference (a candidate no tree kept). */
  discardIfUnused(slot: i32): void {
    if (unchecked(this.refCount[slot]) == 0) unchecked(this.free[this.freeTop++] = slot);
  }

  get slotsInUse(): i32 {
    return this.capacity - this.freeTop;
  }

  equals(slot: i32, q: StaticArray<f32>, qo: i32): bool {
    const d = this.dimensions;
    const base = slot * d;
    const c = this.coords;
    for (let i = 0; i < d; i++) if (unchecked(c[base + i]) != unchecked(q[qo + i])) return false;
    return true;
  }

  memoryBytes(): i32 {
    return this.capacity * (this.dimensions + 2) * 4;
  }
}
