/**
 * Display downsampling that never hides an anomaly: the rows are cut into buckets and each
 * bucket keeps the rows holding its minimum and maximum of every given series (so spikes
 * and dips survive), plus the first and last row, plus every row the caller marks as one
 * that must stay (detections, anomalies, window edges). Returns row indices, ascending.
 */

/** Indices of the rows to draw: at most ~budget rows plus the kept ones. */
export function downsampleIndices(rows: number, series: readonly ArrayLike<number>[], budget: number, keep: Iterable<number> = []): number[] {
  if (!Number.isInteger(budget) || budget < 2) throw new RangeError(`budget must be an integer >= 2, got ${String(budget)}`);
  const chosen = new Uint8Array(rows);
  for (const i of keep) if (i >= 0 && i < rows) chosen[i] = 1;
  if (rows <= budget) chosen.fill(1);
  else {
    const perBucket = Math.max(1, 2 * Math.max(1, series.length));
    const buckets = Math.max(1, Math.floor(budget / perBucket));
    const width = Math.ceil(rows / buckets);
    for (let start = 0; start < rows; start += width) {
      const end = Math.min(rows, start + width);
      for (const ys of series) {
        let lo = -1;
        let hi = -1;
        for (let i = start; i < end; i++) {
          const y = ys[i]!;
          if (!Number.isFinite(y)) continue;
          if (lo < 0 || y < ys[lo]!) lo = i;
          if (hi < 0 || y > ys[hi]!) hi = i;
        }
        if (lo >= 0) chosen[lo] = 1;
        if (hi >= 0) chosen[hi] = 1;
      }
    }
    chosen[0] = 1;
    chosen[rows - 1] = 1;
  }
  const out: number[] = [];
  for (let i = 0; i < rows; i++) if (chosen[i] === 1) out.push(i);
  return out;
}
