/**
 * Leave-one-category-out cross-validation of the quality grader's settings on a corpus in
 * NAB's layout: for each category, the grid setting with the best NAB scores on the OTHER
 * categories is chosen, and that category's series are graded with it. The assembled
 * corpus (every series graded by a setting chosen without its category) is then scored as
 * NAB scores any detector. Beside the in-sample figure (the one setting that is best on
 * all categories), it says how much of that figure is fit to the categories at hand.
 *
 * The forest does not depend on the grader, so each series is run through the forest once
 * and its scores are graded with every setting of the grid.
 */
import { loadKernel } from '../forest/create.js';
import type { ForestOptions } from '../forest/options.js';
import { resolveOptions } from '../forest/options.js';
import { QualityGrader, type QualityGraderOptions } from '../detect/quality-grader.js';
import { loadNabCorpus, type NabSeries } from './nab-corpus.js';
import { evaluateCorpus, NAB_PROFILES, optimiseThreshold, type NabEvaluation } from './nab-score.js';
import { EVAL_FOREST_DEFAULTS, forestScores, gradeSeries, type RunEvalOptions } from './run-eval.js';

const HOUR = 3_600_000;

/**
 * The settings searched: the four knobs that trade detections against false alarms
 * (suppression in time and in records, alarm level, value-context margin), around the defaults, limited to
 * settings that stay quiet on anomaly-free noise (at most 1 alarm per 10,000 records of
 * Gaussian noise, 5 of Laplace noise; alarm level 5 breaks that), which NAB does not
 * measure. The deviation floor is held at its default for the same reason; the short-term
 * score and the seasonal context are fixed by design (docs/quality.md).
 */
export const CV_GRID: readonly QualityGraderOptions[] = Object.freeze(
  [12 * HOUR, 24 * HOUR].flatMap((suppressionTime) =>
    [50, 100].flatMap((suppression) =>
      [6, 7].flatMap((alarmLevel) => [1, 2, 3].map((contextMargin) => Object.freeze({ suppressionTime, suppression, alarmLevel, contextMargin }))),
    ),
  ),
);

export interface NabTriple {
  standard: number;
  reward_low_FP_rate: number;
  reward_low_FN_rate: number;
}

export interface CrossValidation {
  /** The grid setting with the best sum of the three scores on all categories, and its scores. */
  inSample: { grader: QualityGraderOptions; scores: NabTriple };
  /** Per held-out category: the setting chosen on the others. */
  folds: Array<{ category: string; grader: QualityGraderOptions }>;
  /** The assembled corpus's scores. */
  crossValidated: NabTriple;
  /** Scores of the grader's defaults (not necessarily on the grid). */
  defaults: NabTriple;
  settings: number;
  seconds: number;
}

function triple(e: NabEvaluation): NabTriple {
  return { standard: e.standard.score, reward_low_FP_rate: e.reward_low_FP_rate.score, reward_low_FN_rate: e.reward_low_FN_rate.score };
}

const total = (t: NabTriple): number => t.standard + t.reward_low_FP_rate + t.reward_low_FN_rate;

type Graded = NabSeries & { scores: Float64Array };

/**
 * What a fold maximises: the sum of the three normalised scores; on series without any
 * window (normalisation undefined) the sum of the raw scores, i.e. the fewest false alarms.
 */
function criterion(series: readonly Graded[]): number {
  if (series.some((s) => s.windows.length > 0)) return total(triple(evaluateCorpus(series)));
  let raw = 0;
  for (const profile of NAB_PROFILES) raw += optimiseThreshold(series, profile).raw;
  return raw;
}

/** Quality mode only; `grid` defaults to CV_GRID, each entry layered over `options.grader`. */
export async function crossValidateCategories(
  options: Omit<RunEvalOptions, 'mode' | 'resultsDir' | 'detectorName'> & { grid?: readonly QualityGraderOptions[] },
): Promise<CrossValidation> {
  const started = performance.now();
  const engine = options.engine ?? 'wasm';
  const fields = [...(options.columns?.fields ?? ['value'])];
  const forestOptions: ForestOptions = { ...EVAL_FOREST_DEFAULTS.quality, ...options.forest, dimensions: fields.length, engine };
  resolveOptions(forestOptions);
  const grid = (options.grid ?? CV_GRID).map((g) => new QualityGrader({ ...options.grader, ...g }).options);
  if (grid.length === 0) throw new RangeError('the grid needs at least one setting');
  if (engine === 'wasm') await loadKernel();
  const columns = { fields, ...(options.columns?.keyField === undefined ? {} : { keyField: options.columns.keyField }) };
  const corpus = await loadNabCorpus(options.dataDir, options.windowsFile, columns);
  const categories = [...new Set(corpus.map((s) => s.category))].sort();
  if (categories.length < 2) throw new RangeError('cross-validation by category needs at least two categories');
  const timestamps = options.timestamps ?? true;

  const graded: Graded[][] = grid.map(() => []);
  const defaults: Graded[] = [];
  const defaultOptions = new QualityGrader(options.grader).options;
  for (const s of corpus) {
    const forest = await forestScores(s, forestOptions);
    grid.forEach((g, k) => graded[k]!.push({ ...s, scores: gradeSeries(s, forest, 'quality', () => new QualityGrader(g), timestamps).scores }));
    defaults.push({ ...s, scores: gradeSeries(s, forest, 'quality', () => new QualityGrader(defaultOptions), timestamps).scores });
  }

  const bestOn = (keep: (s: NabSeries) => boolean): number => {
    let best = -Infinity;
    let index = 0;
    graded.forEach((g, k) => {
      const t = criterion(g.filter(keep));
      // Strictly better only: on a tie the earlier (grid-order) setting stays.
      if (t > best) {
        best = t;
        index = k;
      }
    });
    return index;
  };

  const all = bestOn(() => true);
  const assembled = new Array<Graded>(corpus.length);
  const folds: CrossValidation['folds'] = [];
  for (const category of categories) {
    const k = bestOn((s) => s.category !== category);
    folds.push({ category, grader: grid[k]! });
    corpus.forEach((s, i) => {
      if (s.category === category) assembled[i] = graded[k]![i]!;
    });
  }
  return {
    inSample: { grader: grid[all]!, scores: triple(evaluateCorpus(graded[all]!)) },
    folds,
    crossValidated: triple(evaluateCorpus(assembled)),
    defaults: triple(evaluateCorpus(defaults)),
    settings: grid.length,
    seconds: (performance.now() - started) / 1000,
  };
}
