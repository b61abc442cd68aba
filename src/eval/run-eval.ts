/**
 * Runs a detector configuration over a labelled corpus in NAB's layout and scores it the
 * way NAB does: one fresh model per series, online (each record is scored, graded, then
 * learnt; nothing looks ahead), one anomaly score in [0, 1] per row, then NAB's three
 * profiles with their corpus-optimised thresholds (nab-score.ts).
 *
 * What a row's NAB score is, per mode:
 * - quality: the QualityGrader's grade (the `--threshold auto` signal);
 * - aws-parity: the grade of AWS's TRCF thresholder (`--threshold auto --parity aws`);
 * - raw: min(1, score / 8), how Kinesis Analytics' RANDOM_CUT_FOREST entered NAB.
 *
 * Records go through the detectors users run (`Detector`, or `KeyedDetector` with a key
 * field), timestamps included, so eval measures `detect --threshold auto` itself. Series with
 * several fields give the forest one value per field.
 */
import { createForestSync, loadKernel } from '../forest/create.js';
import type { EngineName, ForestOptions } from '../forest/options.js';
import { resolveOptions, seedOf } from '../forest/options.js';
import { DetectionBatch, Detector, KeyedDetector, type RecordDetector } from '../detect/detector.js';
import { FixedThresholdGrader, type Grader } from '../detect/grader.js';
import { QualityGrader, QUALITY_FOREST_DEFAULTS, type QualityGraderOptions } from '../detect/quality-grader.js';
import { TrcfThresholder } from '../detect/thresholder.js';
import { formatNabTimestamp, loadNabCorpus, writeNabResults, type NabColumns, type NabSeries } from './nab-corpus.js';
import { evaluateCorpus, NAB_PROFILES, type NabEvaluation, type NabProfileName } from './nab-score.js';

export type EvalMode = 'quality' | 'aws-parity' | 'raw';
export const EVAL_MODES: readonly EvalMode[] = ['quality', 'aws-parity', 'raw'];

/** The forest options eval lets a user set (dimensions follow the corpus's fields). */
export type EvalForestOptions = Pick<
  ForestOptions,
  'numberOfTrees' | 'sampleSize' | 'shingleSize' | 'timeDecay' | 'outputAfter' | 'randomSeed'
>;

/** Raw scores are divided by this for NAB, as AWS's NAB entry did. */
export const RAW_SCORE_DIVISOR = 8;

/** Forest options used unless overridden, per mode. */
export const EVAL_FOREST_DEFAULTS: Readonly<Record<EvalMode, Readonly<EvalForestOptions>>> = Object.freeze({
  quality: { ...QUALITY_FOREST_DEFAULTS, randomSeed: 0 },
  // The library's defaults, which `--threshold auto --parity aws` runs with.
  'aws-parity': { numberOfTrees: 50, sampleSize: 256, shingleSize: 1, randomSeed: 0 },
  // The configuration of the AWS Java figure "100 trees, shingle 1, timeDecay 1e-5, score/8".
  raw: { numberOfTrees: 100, sampleSize: 256, shingleSize: 1, timeDecay: 1e-5, randomSeed: 0 },
});

/** NAB result folder name per mode (NAB splits result file names on "<detector>_"). */
export const EVAL_DETECTOR_NAMES: Readonly<Record<EvalMode, string>> = Object.freeze({
  quality: 'rcfStreamQuality',
  'aws-parity': 'rcfStreamAwsParity',
  raw: 'rcfStreamRaw',
});

export interface EvalProgress {
  /** Series finished so far (0 before the first). */
  filesDone: number;
  files: number;
  /** Records scored so far, also within the current series. */
  recordsDone: number;
  records: number;
  /** The series being scored, or just finished. */
  current: string;
  seconds: number;
}

export interface RunEvalOptions {
  /** Folder with data/<category>/<file>.csv and (unless windowsFile) labels/combined_windows.json. */
  dataDir: string;
  windowsFile?: string;
  /** Default 'quality'. */
  mode?: EvalMode;
  /** Overrides of the mode's forest defaults (EVAL_FOREST_DEFAULTS). */
  forest?: EvalForestOptions;
  /** Default 'wasm'. */
  engine?: EngineName;
  /** Quality mode only. */
  grader?: QualityGraderOptions;
  /** Value columns and key column of the data files (default: the single `value` column). */
  columns?: NabColumns;
  /** Give the detector each record's timestamp (default true; false grades as if records had none). */
  timestamps?: boolean;
  /** Write NAB result files here (`<dir>/<detectorName>/<category>/<detectorName>_<file>.csv`). */
  resultsDir?: string;
  /** Default EVAL_DETECTOR_NAMES[mode]. */
  detectorName?: string;
  onProgress?: (progress: EvalProgress) => void;
  /** Told about each series once scored: its rows and their [0, 1] NAB scores (e.g. for a report). */
  onSeries?: (series: NabSeries, scores: Float64Array) => void;
}

export interface FileDetections {
  name: string;
  /** Windows detected, false-positive detections, windows missed (NAB counting). */
  tp: number;
  fp: number;
  fn: number;
  /** This file's share of the profile's raw score. */
  raw: number;
  /** Timestamps (NAB format) of the detections that count: each window's earliest and every false positive. */
  detections: string[];
}

export interface ProfileOutcome {
  profile: NabProfileName;
  /** The corpus-optimised threshold on the [0, 1] row scores. */
  threshold: number;
  /** Normalised: 0 = never detects, 100 = every window at its first row. */
  score: number;
  raw: number;
  tp: number;
  fp: number;
  fn: number;
  perFile: FileDetections[];
  /** Per category (sorted by name), at this profile's corpus threshold. */
  perCategory: CategoryOutcome[];
}

/** A category's share of a profile's score, at the corpus-wide threshold. */
export interface CategoryOutcome {
  category: string;
  files: number;
  windows: number;
  /** Normalised like the corpus score; null for a category without scored windows. */
  score: number | null;
  tp: number;
  fp: number;
  fn: number;
}

export interface SeriesSummary {
  name: string;
  rows: number;
  windows: number;
  /** Rows the detector itself flagged (quality and parity modes; raw mode has no alarms). */
  alarms: number;
}

export interface EvalResult {
  mode: EvalMode;
  detectorName: string;
  engine: EngineName;
  /** The forest options used for every series (dimensions 1). */
  forest: {
    numberOfTrees: number;
    sampleSize: number;
    shingleSize: number;
    timeDecay: number;
    outputAfter: number;
    /** As a decimal string: a Java long does not always fit a JSON number. */
    randomSeed: string;
  };
  grader?: Required<QualityGraderOptions>;
  /** Fields per record, and the key field when there is one. */
  fields: string[];
  keyField?: string;
  timestamps: boolean;
  files: number;
  records: number;
  profiles: Record<NabProfileName, ProfileOutcome>;
  series: SeriesSummary[];
  /** Paths written under resultsDir. */
  resultFiles: string[];
  /** Wall time: loading, scoring and NAB scoring (not writing result files). */
  seconds: number;
}

/** Records per detection batch, so that progress moves within a long series. */
const CHUNK = 16_384;

/** Per-row forest scores of one series, and the key of each row's model. */
export interface ForestScores {
  raw: Float64Array;
  keys: string[] | undefined;
}

/** A grader that never alarms: the detector then reports the forest's own scores. */
const rawScores = (): Grader => new FixedThresholdGrader(Number.MAX_VALUE);

/**
 * Scores a series with the detector users run (one model, or one per key), online. The
 * grader is applied afterwards (gradeSeries): graders see only (score, values, ready, time)
 * and never touch the forest, so grading afterwards equals grading in between, and one
 * forest run serves any number of grader settings.
 */
export async function forestScores(series: NabSeries, forestOptions: ForestOptions, onChunk: (records: number) => void = () => {}): Promise<ForestScores> {
  const n = series.timestamps.length;
  const d = series.dimensions;
  const keys = series.keys;
  const options = { forest: { ...forestOptions, dimensions: d }, grader: rawScores };
  const detector: RecordDetector = keys === undefined ? await Detector.create(options) : await KeyedDetector.create({ ...options, maxKeys: Number.MAX_SAFE_INTEGER });
  try {
    const batch = new DetectionBatch(Math.min(CHUNK, n), d);
    const raw = new Float64Array(n);
    for (let i = 0; i < n; i += CHUNK) {
      const end = Math.min(n, i + CHUNK);
      batch.count = end - i;
      batch.values.set(series.values.subarray(i * d, end * d));
      if (keys !== undefined) for (let j = i; j < end; j++) batch.keys[j - i] = keys[j]!;
      detector.run(batch);
      raw.set(batch.score.subarray(0, end - i), i);
      onChunk(end - i);
    }
    return { raw, keys };
  } finally {
    detector.dispose();
  }
}

/** A grader for one model of the series. */
export type GraderMaker = () => Grader;

/** Grades a series' forest scores (one grader per key), with or without timestamps. Returns [0, 1] row scores. */
export function gradeSeries(
  series: NabSeries,
  scores: ForestScores,
  mode: EvalMode,
  makeGrader: GraderMaker,
  timestamps: boolean,
): { scores: Float64Array; alarms: number } {
  const n = series.timestamps.length;
  const out = new Float64Array(n);
  if (mode === 'raw') {
    for (let i = 0; i < n; i++) out[i] = Math.min(1, scores.raw[i]! / RAW_SCORE_DIVISOR);
    return { scores: out, alarms: 0 };
  }
  const d = series.dimensions;
  const graders = new Map<string, Grader>();
  const values = new Float64Array(d);
  let alarms = 0;
  for (let i = 0; i < n; i++) {
    const key = scores.keys?.[i] ?? '';
    let grader = graders.get(key);
    if (grader === undefined) graders.set(key, (grader = makeGrader()));
    for (let j = 0; j < d; j++) values[j] = series.values[i * d + j]!;
    const score = scores.raw[i]!;
    // The forest reports exactly 0 until it is ready, and a positive score after.
    const g = grader.grade(score, values, score > 0, timestamps ? series.timestamps[i]! : Number.NaN);
    if (g.anomaly) alarms++;
    out[i] = g.grade;
  }
  return { scores: out, alarms };
}

/** The grader maker of a mode (quality: with these options). */
export function graderMaker(mode: EvalMode, forest: ForestOptions, dimensions: number, grader?: QualityGraderOptions): GraderMaker {
  if (mode === 'quality') return () => new QualityGrader(grader);
  const config = resolveOptions({ ...forest, dimensions });
  return () => new TrcfThresholder({ dimensions, shingleSize: config.shingleSize, timeDecay: config.timeDecay });
}

/** Each category's share of a profile's result, normalised the way NAB normalises the corpus. */
export function perCategory(corpus: readonly NabSeries[], evaluation: NabEvaluation, profile: NabProfileName): CategoryOutcome[] {
  const weights = NAB_PROFILES.find((p) => p.name === profile)!;
  const byCategory = new Map<string, CategoryOutcome & { raw: number; scored: number }>();
  evaluation[profile].perFile.forEach((f, i) => {
    const s = corpus[i]!;
    let c = byCategory.get(s.category);
    if (c === undefined) byCategory.set(s.category, (c = { category: s.category, files: 0, windows: 0, score: null, tp: 0, fp: 0, fn: 0, raw: 0, scored: 0 }));
    c.files++;
    c.windows += s.windows.length;
    c.tp += f.tp;
    c.fp += f.fp;
    c.fn += f.fn;
    c.raw += f.raw;
    c.scored += f.tp + f.fn;
  });
  return [...byCategory.values()]
    .sort((a, b) => (a.category < b.category ? -1 : a.category > b.category ? 1 : 0))
    .map(({ raw, scored, ...c }) => {
      const nullRaw = -weights.fn * scored;
      const perfect = weights.tp * c.windows;
      return { ...c, score: perfect === nullRaw ? null : (100 * (raw - nullRaw)) / (perfect - nullRaw) };
    });
}

export async function runEval(options: RunEvalOptions): Promise<EvalResult> {
  const started = performance.now();
  const mode = options.mode ?? 'quality';
  if (!EVAL_MODES.includes(mode)) throw new RangeError(`mode must be one of ${EVAL_MODES.join(', ')}, got ${String(mode)}`);
  if (options.grader !== undefined && mode !== 'quality') {
    throw new RangeError('grader options apply only to the quality mode');
  }
  const engine = options.engine ?? 'wasm';
  const fields = [...(options.columns?.fields ?? ['value'])];
  const keyField = options.columns?.keyField;
  const timestamps = options.timestamps ?? true;
  const forestOptions: ForestOptions = { ...EVAL_FOREST_DEFAULTS[mode], ...options.forest, dimensions: fields.length, engine };
  // Validates the options once, before any file is read.
  const config = resolveOptions(forestOptions);
  const graderOptions = mode === 'quality' ? new QualityGrader(options.grader).options : undefined;
  const detectorName = options.detectorName ?? EVAL_DETECTOR_NAMES[mode];
  // Checked now rather than after minutes of scoring (writeNabResults checks it too).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(detectorName)) {
    throw new RangeError(`detector name "${detectorName}" must be letters, digits, ".", "_" or "-"`);
  }
  if (engine === 'wasm') await loadKernel();

  const corpus = await loadNabCorpus(options.dataDir, options.windowsFile, { fields, ...(keyField === undefined ? {} : { keyField }) });
  let records = 0;
  for (const s of corpus) records += s.timestamps.length;

  const scored: Array<NabSeries & { scores: Float64Array }> = [];
  const series: SeriesSummary[] = [];
  let recordsDone = 0;
  const report = (filesDone: number, current: string): void =>
    options.onProgress?.({
      filesDone,
      files: corpus.length,
      recordsDone,
      records,
      current,
      seconds: (performance.now() - started) / 1000,
    });
  report(0, corpus[0]!.name);
  const makeGrader = graderMaker(mode, forestOptions, fields.length, graderOptions);
  for (const s of corpus) {
    const fileStart = recordsDone;
    const rows = s.timestamps.length;
    const forest = await forestScores(s, forestOptions, (chunk) => {
      recordsDone += chunk;
      // The end of the series is reported below, once it is graded.
      if (recordsDone - fileStart < rows) report(scored.length, s.name);
    });
    const { scores, alarms } = gradeSeries(s, forest, mode, makeGrader, timestamps);
    scored.push({ ...s, scores });
    options.onSeries?.(s, scores);
    series.push({ name: s.name, rows, windows: s.windows.length, alarms });
    report(scored.length, s.name);
  }

  const evaluation = evaluateCorpus(scored);
  const profiles = {} as Record<NabProfileName, ProfileOutcome>;
  for (const { name } of NAB_PROFILES) {
    const result = evaluation[name];
    let tp = 0;
    let fp = 0;
    let fn = 0;
    const perFile = result.perFile.map((f, i): FileDetections => {
      tp += f.tp;
      fp += f.fp;
      fn += f.fn;
      const ts = scored[i]!.timestamps;
      return { name: f.name, tp: f.tp, fp: f.fp, fn: f.fn, raw: f.raw, detections: f.detections.map((row) => formatNabTimestamp(ts[row]!)) };
    });
    profiles[name] = {
      profile: name,
      threshold: result.threshold,
      score: result.score,
      raw: result.raw,
      tp,
      fp,
      fn,
      perFile,
      perCategory: perCategory(corpus, evaluation, name),
    };
  }
  const seconds = (performance.now() - started) / 1000;

  const resultFiles = options.resultsDir === undefined ? [] : await writeNabResults(options.resultsDir, detectorName, scored);
  return {
    mode,
    detectorName,
    engine,
    forest: {
      numberOfTrees: config.numberOfTrees,
      sampleSize: config.sampleSize,
      shingleSize: config.shingleSize,
      timeDecay: config.timeDecay,
      outputAfter: config.outputAfter,
      randomSeed: seedOf(config).toString(),
    },
    ...(graderOptions === undefined ? {} : { grader: graderOptions }),
    fields,
    ...(keyField === undefined ? {} : { keyField }),
    timestamps,
    files: corpus.length,
    records,
    profiles,
    series,
    resultFiles,
    seconds,
  };
}
