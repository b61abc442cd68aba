// When to run the collector. A collection walks every live object, so running one per
// dispose or per point-store growth costs O(live objects) each time: quadratic with
// thousands of forests. Instead garbage is counted and collected once it reaches an
// eighth of linear memory, which keeps the cost amortised O(1) per byte freed and the
// waste bounded.

let garbageBytes: usize = 0;

export function noteGarbage(bytes: usize): void {
  garbageBytes += bytes;
}

/** Collects if enough garbage has accumulated. Call only from an exported entry point's top level. */
export function collectIfWorthwhile(): void {
  const limit = max<usize>(<usize>1 << 20, (<usize>memory.size() << 16) >> 3);
  if (garbageBytes >= limit) {
    garbageBytes = 0;
    __collect();
  }
}
