/**
 * Numenta Anomaly Benchmark (NAB) scoring, written from NAB's published description and its
 * reference implementation (NAB v1.1: `nab/sweeper.py`, `nab/optimizer.py`, `nab/scorer.py`,
 * `nab/runner.py`, `nab/util.py`, `config/profiles.json`). The rules, in our own words:
 *
 * 1. Detections. A detector gives every row an anomaly score in [0, 1]; at threshold `t` a row
 *    is a detection when `score >= t`.
 * 2. Probation. The first `min(floor(0.15 * rows), 0.15 * 5000)` rows of each file (so at most
 *    750) are not scored at all: detections there count nothing, and a window lying wholly in
 *    probation is neither rewarded nor penalised.
 * 3. Positions are measured in rows, not in time. A window `[start, end]` (inclusive timestamps)
 *    covers rows `s..e`, width `W = e - s + 1`: scanning the file in order, `s` is the first row
 *    stamped `start` and `e` the first row stamped `end` (NAB's labels use row timestamps; for
 *    other bounds, `s` is the first row at or after `start`, `e` the last before passing `end`).
 * 4. Scaled sigmoid: `S(y) = 2 / (1 + exp(5y)) - 1` (= `2*sigmoid(-5y) - 1`), except
 *    `S(y) = -1` when `y >= 3`.
 * 5. True positive. Inside a window only the earliest scored detection counts. At row `i` its
 *    relative position is `y = -(e - i + 1) / W` (so -1 at the first row, -1/W at the last) and
 *    it earns `A_TP * S(y) / S(-1)`: exactly `A_TP` at the window's first row, falling towards 0
 *    at its end. Further detections in the same window earn nothing.
 * 6. False negative. A window (with at least one scored row) and no detection costs `-A_FN`.
 * 7. False positive. A detection outside every window earns `A_FP * S(y)` (negative) with
 *    `y = (i - e') / (W' - 1)`, where `e'`, `W'` are the last row and width of the closest
 *    PRECEDING window: right after a window it costs little, from 3 window-widths on it costs
 *    the full `A_FP`. Before the first window of a file it always costs the full `A_FP`.
 *    (NAB divides by zero after a one-row window; here that position is +Infinity: full cost.)
 * 8. Profiles (A_TP, A_FP, A_FN): standard (1, 0.11, 1), reward_low_FP_rate (1, 0.22, 1),
 *    reward_low_FN_rate (1, 0.11, 2). NAB's profiles also carry a true-negative weight that the
 *    scorer never reads.
 * 9. Threshold. One threshold per profile for the whole corpus: NAB sorts every scored row of
 *    every file by anomaly score and evaluates each distinct score as a threshold, plus 1.1
 *    (nothing detected). The best raw score wins; among equal scores the highest threshold
 *    (NAB's stable sort keeps the first, i.e. highest, one).
 * 10. Raw score = sum over files of the rewards and costs above at that threshold.
 *    Normalised score = `100 * (raw - null) / (perfect - null)`, with `null` the raw score of a
 *    detector that never detects (`-A_FN` per scored window) and `perfect = A_TP * windows`
 *    (every labelled window detected at its first row).
 *
 * Counts: `tp`/`fn` here count windows and `fp` counts false-positive detections; NAB's own
 * result tables count rows (`rowCounts`).
 */

export type NabProfileName = 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate';

/** Weights of one NAB application profile (NAB's `tpWeight`, `fpWeight`, `fnWeight`). */
export interface NabProfile {
  readonly name: NabProfileName;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
}

export const NAB_PROFILES: readonly NabProfile[] = Object.freeze([
  Object.freeze({ name: 'standard', tp: 1, fp: 0.11, fn: 1 }),
  Object.freeze({ name: 'reward_low_FP_rate', tp: 1, fp: 0.22, fn: 1 }),
  Object.freeze({ name: 'reward_low_FN_rate', tp: 1, fp: 0.11, fn: 2 }),
] as const);

export const NAB_PROBATION_FRACTION = 0.15;

/** Threshold NAB reports when detecting nothing is best: above any score in [0, 1]. */
export const NAB_NEVER_DETECT_THRESHOLD = 1.1;

/** A series with its labelled anomaly windows; timestamps in ms since epoch, in file order. */
export interface LabelledSeries {
  /** NAB relative path, e.g. "realKnownCause/nyc_taxi.csv". */
  readonly name: string;
  readonly timestamps: ArrayLike<number>;
  /** [start, end] in ms, inclusive, sorted and not overlapping. */
  readonly windows: ReadonlyArray<readonly [number, number]>;
}

export interface ScoredSeries extends LabelledSeries {
  /** One anomaly score in [0, 1] per row. */
  readonly scores: ArrayLike<number>;
}

/** NAB's per-row confusion counts over scored (post-probation) rows. */
export interface NabRowCounts {
  tp: number;
  tn: number;
  fp: number;
  fn: number;
}

export interface SeriesScore {
  readonly name: string;
  readonly raw: number;
  /** Windows detected. */
  readonly tp: number;
  /** False-positive detections (rows). */
  readonly fp: number;
  /** Windows missed. */
  readonly fn: number;
  /** Row indexes that count: the earliest detection of each window and every false positive. */
  readonly detections: number[];
  readonly rowCounts: NabRowCounts;
}

export interface ThresholdChoice {
  readonly threshold: number;
  readonly raw: number;
}

export interface NabProfileResult {
  readonly profile: NabProfile;
  readonly threshold: number;
  /** Normalised: 0 = never detects, 100 = every window detected at its first row. */
  readonly score: number;
  readonly raw: number;
  readonly nullRaw: number;
  readonly perfectRaw: number;
  readonly perFile: SeriesScore[];
}

export type NabEvaluation = Record<NabProfileName, NabProfileResult>;

export function probationLength(rows: number): number {
  return Math.min(Math.floor(NAB_PROBATION_FRACTION * rows), NAB_PROBATION_FRACTION * 5000);
}

export function scaledSigmoid(relativePosition: number): number {
  if (relativePosition >= 3) return -1;
  return 2 / (1 + Math.exp(5 * relativePosition)) - 1;
}

const MAX_TP_SIGMOID = scaledSigmoid(-1);

/** Rows that matter for scoring, derived once per series. */
interface SeriesLayout {
  readonly rows: number;
  readonly probation: number;
  /** First and last row of each window (all windows, including any inside probation). */
  readonly windowFirst: Int32Array;
  readonly windowLast: Int32Array;
}

function layoutSeries(series: LabelledSeries): SeriesLayout {
  const ts = series.timestamps;
  const rows = ts.length;
  for (let i = 0; i < rows; i++) {
    if (!Number.isFinite(ts[i]!)) throw new Error(`${series.name}: timestamp at row ${i} is not a finite number`);
  }
  // Rows are scanned in file order rather than binary-searched: NAB's real files repeat and
  // step back in time around clock changes, and NAB itself locates windows by scanning.
  const n = series.windows.length;
  const windowFirst = new Int32Array(n);
  const windowLast = new Int32Array(n);
  let row = 0;
  for (let w = 0; w < n; w++) {
    const [start, end] = series.windows[w]!;
    if (!(start <= end)) throw new Error(`${series.name}: window ${w} starts after it ends`);
    if (w > 0 && !(start > series.windows[w - 1]![1])) {
      throw new Error(`${series.name}: windows must be sorted and must not overlap (window ${w})`);
    }
    while (row < rows && ts[row]! < start) row++;
    const first = row;
    while (row < rows && ts[row]! < end) row++;
    // The window ends at the first row stamped `end`, or just before the first row past it.
    const last = row < rows && ts[row] === end ? row : row - 1;
    if (last < first) {
      throw new Error(`${series.name}: window ${w} [${isoOf(start)}, ${isoOf(end)}] covers no rows`);
    }
    windowFirst[w] = first;
    windowLast[w] = last;
    row = last + 1;
  }
  return { rows, probation: probationLength(rows), windowFirst, windowLast };
}

function isoOf(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function checkScores(series: ScoredSeries): void {
  const { scores } = series;
  if (scores.length !== series.timestamps.length) {
    throw new Error(`${series.name}: ${scores.length} scores for ${series.timestamps.length} rows`);
  }
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    // Also rejects NaN, which would make the descending sort meaningless.
    if (!(s >= 0 && s <= 1)) throw new Error(`${series.name}: anomaly score ${s} at row ${i} is not in [0, 1]`);
  }
}

/** Unweighted NAB sigmoid for a detection at `row`; `window` is -1 outside windows. */
function rowSigmoid(layout: SeriesLayout, row: number, window: number, precedingWindow: number): number {
  if (window >= 0) {
    const first = layout.windowFirst[window]!;
    const last = layout.windowLast[window]!;
    return scaledSigmoid(-(last - row + 1) / (last - first + 1));
  }
  if (precedingWindow < 0) return scaledSigmoid(3);
  const last = layout.windowLast[precedingWindow]!;
  const width = last - layout.windowFirst[precedingWindow]! + 1;
  return scaledSigmoid((row - last) / (width - 1));
}

/**
 * Walks the scored rows of a series in order, telling `visit` which window each row is in
 * (-1 outside) and which window last ended before it (-1 before the first).
 */
function forEachScoredRow(
  layout: SeriesLayout,
  visit: (row: number, window: number, precedingWindow: number) => void,
): void {
  const { windowFirst, windowLast } = layout;
  let next = 0; // next window not yet ended
  while (next < windowFirst.length && windowLast[next]! < layout.probation) next++;
  for (let row = layout.probation; row < layout.rows; row++) {
    if (next < windowFirst.length && row > windowLast[next]!) next++;
    const inWindow = next < windowFirst.length && row >= windowFirst[next]!;
    visit(row, inWindow ? next : -1, inWindow ? -1 : next - 1);
  }
}

function windowIsScored(layout: SeriesLayout, w: number): boolean {
  return layout.windowLast[w]! >= layout.probation;
}

/** NAB's score for one series at a fixed threshold. */
export function scoreSeriesAt(series: ScoredSeries, threshold: number, profile: NabProfile): SeriesScore {
  checkScores(series);
  const layout = layoutSeries(series);
  const { scores } = series;
  const detected = new Uint8Array(layout.windowFirst.length);
  const detections: number[] = [];
  const rowCounts: NabRowCounts = { tp: 0, tn: 0, fp: 0, fn: 0 };
  let raw = 0;
  let fp = 0;
  forEachScoredRow(layout, (row, window, preceding) => {
    const isDetection = scores[row]! >= threshold;
    if (window >= 0) {
      if (isDetection) rowCounts.tp++;
      else rowCounts.fn++;
      if (isDetection && !detected[window]) {
        detected[window] = 1;
        raw += (rowSigmoid(layout, row, window, -1) * profile.tp) / MAX_TP_SIGMOID;
        detections.push(row);
      }
    } else if (isDetection) {
      rowCounts.fp++;
      fp++;
      raw += rowSigmoid(layout, row, -1, preceding) * profile.fp;
      detections.push(row);
    } else {
      rowCounts.tn++;
    }
  });
  let tp = 0;
  let fn = 0;
  for (let w = 0; w < detected.length; w++) {
    if (!windowIsScored(layout, w)) continue;
    if (detected[w]) tp++;
    else {
      fn++;
      raw -= profile.fn;
    }
  }
  return { name: series.name, raw, tp, fp, fn, detections, rowCounts };
}

/** The scored rows of a whole corpus, flattened and sorted by anomaly score (descending). */
interface PreparedCorpus {
  readonly score: Float64Array;
  /** Corpus-wide index of the row's window, -1 outside windows. */
  readonly window: Int32Array;
  /** Unweighted scaled sigmoid of the row as a detection (see `rowSigmoid`). */
  readonly sigmoid: Float64Array;
  readonly order: Uint32Array;
  /** Windows with at least one scored row. */
  readonly scoredWindows: number;
  /** All labelled windows, as NAB's perfect score counts them. */
  readonly allWindows: number;
}

function prepareCorpus(corpus: readonly ScoredSeries[]): PreparedCorpus {
  const layouts = corpus.map((series) => {
    checkScores(series);
    return layoutSeries(series);
  });
  let total = 0;
  for (const layout of layouts) total += Math.max(0, layout.rows - layout.probation);
  const score = new Float64Array(total);
  const window = new Int32Array(total);
  const sigmoid = new Float64Array(total);
  let k = 0;
  let windowBase = 0;
  let allWindows = 0;
  corpus.forEach((series, f) => {
    const layout = layouts[f]!;
    const globalId = new Int32Array(layout.windowFirst.length).fill(-1);
    for (let w = 0; w < globalId.length; w++) if (windowIsScored(layout, w)) globalId[w] = windowBase++;
    allWindows += globalId.length;
    forEachScoredRow(layout, (row, w, preceding) => {
      score[k] = series.scores[row]!;
      window[k] = w >= 0 ? globalId[w]! : -1;
      sigmoid[k] = rowSigmoid(layout, row, w, preceding);
      k++;
    });
  });
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  order.sort((a, b) => score[b]! - score[a]!);
  return { score, window, sigmoid, order, scoredWindows: windowBase, allWindows };
}

/**
 * Sum of per-window contributions kept in a pairwise tree, so each change costs O(log windows)
 * and the total never drifts the way a running `+= new - old` would.
 */
class WindowTotals {
  private readonly size: number;
  private readonly tree: Float64Array;

  constructor(count: number, initial: number) {
    let size = 1;
    while (size < count) size *= 2;
    this.size = size;
    this.tree = new Float64Array(2 * size);
    for (let w = 0; w < count; w++) this.tree[size + w] = initial;
    for (let node = size - 1; node >= 1; node--) this.tree[node] = this.tree[2 * node]! + this.tree[2 * node + 1]!;
  }

  get(w: number): number {
    return this.tree[this.size + w]!;
  }

  set(w: number, value: number): void {
    let node = this.size + w;
    this.tree[node] = value;
    for (node >>= 1; node >= 1; node >>= 1) this.tree[node] = this.tree[2 * node]! + this.tree[2 * node + 1]!;
  }

  get total(): number {
    return this.tree[1]!;
  }
}

function sweep(prepared: PreparedCorpus, profile: NabProfile): ThresholdChoice {
  const { score, window, sigmoid, order } = prepared;
  const windows = new WindowTotals(prepared.scoredWindows, -profile.fn);
  let falsePositives = 0;
  let best: ThresholdChoice = { threshold: NAB_NEVER_DETECT_THRESHOLD, raw: windows.total };
  let k = 0;
  while (k < order.length) {
    const threshold = score[order[k]!]!;
    // Lowering the threshold to `threshold` turns every row with that score into a detection.
    for (; k < order.length && score[order[k]!] === threshold; k++) {
      const row = order[k]!;
      const w = window[row]!;
      if (w < 0) {
        falsePositives += sigmoid[row]! * profile.fp;
      } else {
        // Earlier rows in a window earn more, so the best reward is the earliest detection's.
        const reward = (sigmoid[row]! * profile.tp) / MAX_TP_SIGMOID;
        if (reward > windows.get(w)) windows.set(w, reward);
      }
    }
    const raw = falsePositives + windows.total;
    // Strictly greater: on a tie the higher threshold, met first, stays.
    if (raw > best.raw) best = { threshold, raw };
  }
  return best;
}

/** The corpus-wide threshold that maximises the profile's raw score (NAB's sweep). */
export function optimiseThreshold(corpus: readonly ScoredSeries[], profile: NabProfile): ThresholdChoice {
  return sweep(prepareCorpus(corpus), profile);
}

function resultFor(corpus: readonly ScoredSeries[], prepared: PreparedCorpus, profile: NabProfile): NabProfileResult {
  const { threshold } = sweep(prepared, profile);
  const perFile = corpus.map((series) => scoreSeriesAt(series, threshold, profile));
  let raw = 0;
  for (const file of perFile) raw += file.raw;
  const nullRaw = -profile.fn * prepared.scoredWindows;
  const perfectRaw = profile.tp * prepared.allWindows;
  if (perfectRaw === nullRaw) {
    throw new Error('NAB normalisation is undefined for a corpus without anomaly windows');
  }
  const score = (100 * (raw - nullRaw)) / (perfectRaw - nullRaw);
  return { profile, threshold, score, raw, nullRaw, perfectRaw, perFile };
}

/** Optimises the threshold, scores every file at it, and normalises the total (NAB's final score). */
export function normalisedScore(corpus: readonly ScoredSeries[], profile: NabProfile): NabProfileResult {
  return resultFor(corpus, prepareCorpus(corpus), profile);
}

/** `normalisedScore` for the three NAB profiles, sorting the corpus once. */
export function evaluateCorpus(corpus: readonly ScoredSeries[]): NabEvaluation {
  const prepared = prepareCorpus(corpus);
  const results = {} as NabEvaluation;
  for (const profile of NAB_PROFILES) results[profile.name] = resultFor(corpus, prepared, profile);
  return results;
}
