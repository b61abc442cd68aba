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
 */
import { createForestSync, loadKernel } from '../forest/create.js';
import type { EngineName, ForestOptions } from '../forest/options.js';
import { resolveOptions, seedOf } from '../forest/options.js';
import type { Grader } from '../detect/grader.js';
import { QualityGrader, QUALITY_FOREST_DEFAULTS, type QualityGraderOptions } from '../detect/quality-grader.js';
import { TrcfThresholder } from '../detect/thresholder.js';
import { formatNabTimestamp, loadNabCorpus, writeNabResults, type NabSeries } from './nab-corpus.js';
import { evaluateCorpus, NAB_PROFILES, type NabProfileName } from './nab-score.js';

export type EvalMode = 'quality' | 'aws-parity' | 'raw';
export const EVAL_MODES: readonly EvalMode[] = ['quality', 'aws-parity', 'raw'];

/** The forest options eval lets a user set (dimensions is always 1: NAB series are univariate). */
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
  files: number;
  records: number;
  profiles: Record<NabProfileName, ProfileOutcome>;
  series: SeriesSummary[];
  /** Paths written under resultsDir. */
  resultFiles: string[];
  /** Wall time: loading, scoring and NAB scoring (not writing result files). */
  seconds: number;
}

/** Records scored per forest call, so that progress moves within a long series. */
const CHUNK = 16_384;

/** One series scored online: its [0, 1] NAB scores and the detector's own alarm count. */
function scoreSeries(
  series: NabSeries,
  mode: EvalMode,
  forestOptions: ForestOptions,
  graderOptions: QualityGraderOptions | undefined,
  onChunk: (records: number) => void,
): { scores: Float64Array; alarms: number } {
  const forest = createForestSync(forestOptions);
  try {
    const n = series.values.length;
    // process() scores then learns each record; graders see only (score, values, ready)
    // and never touch the forest, so grading afterwards equals grading in between.
    const raw = new Float64Array(n);
    for (let i = 0; i < n; i += CHUNK) {
      const end = Math.min(n, i + CHUNK);
      forest.process(series.values.subarray(i, end), raw.subarray(i, end));
      onChunk(end - i);
    }
    if (mode === 'raw') {
      for (let i = 0; i < n; i++) raw[i] = Math.min(1, raw[i]! / RAW_SCORE_DIVISOR);
      return { scores: raw, alarms: 0 };
    }
    const config = forest.config;
    const grader: Grader =
      mode === 'quality'
        ? new QualityGrader(graderOptions)
        : new TrcfThresholder({ dimensions: 1, shingleSize: config.shingleSize, timeDecay: config.timeDecay });
    const value = new Float64Array(1);
    let alarms = 0;
    for (let i = 0; i < n; i++) {
      value[0] = series.values[i]!;
      const score = raw[i]!;
      // The forest reports exactly 0 until it is ready, and a positive score after.
      const g = grader.grade(score, value, score > 0);
      if (g.anomaly) alarms++;
      raw[i] = g.grade;
    }
    return { scores: raw, alarms };
  } finally {
    forest.dispose();
  }
}

export async function runEval(options: RunEvalOptions): Promise<EvalResult> {
  const started = performance.now();
  const mode = options.mode ?? 'quality';
  if (!EVAL_MODES.includes(mode)) throw new RangeError(`mode must be one of ${EVAL_MODES.join(', ')}, got ${String(mode)}`);
  if (options.grader !== undefined && mode !== 'quality') {
    throw new RangeError('grader options apply only to the quality mode');
  }
  const engine = options.engine ?? 'wasm';
  const forestOptions: ForestOptions = { ...EVAL_FOREST_DEFAULTS[mode], ...options.forest, dimensions: 1, engine };
  // Validates the options once, before any file is read.
  const config = resolveOptions(forestOptions);
  const graderOptions = mode === 'quality' ? new QualityGrader(options.grader).options : undefined;
  const detectorName = options.detectorName ?? EVAL_DETECTOR_NAMES[mode];
  // Checked now rather than after minutes of scoring (writeNabResults checks it too).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(detectorName)) {
    throw new RangeError(`detector name "${detectorName}" must be letters, digits, ".", "_" or "-"`);
  }
  if (engine === 'wasm') await loadKernel();

  const corpus = await loadNabCorpus(options.dataDir, options.windowsFile);
  let records = 0;
  for (const s of corpus) records += s.values.length;

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
  for (const s of corpus) {
    const fileStart = recordsDone;
    const { scores, alarms } = scoreSeries(s, mode, forestOptions, graderOptions, (chunk) => {
      recordsDone += chunk;
      // The end of the series is reported below, once it is graded.
      if (recordsDone - fileStart < s.values.length) report(scored.length, s.name);
    });
    scored.push({ ...s, scores });
    options.onSeries?.(s, scores);
    series.push({ name: s.name, rows: s.values.length, windows: s.windows.length, alarms });
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
    profiles[name] = { profile: name, threshold: result.threshold, score: result.score, raw: result.raw, tp, fp, fn, perFile };
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
    files: corpus.length,
    records,
    profiles,
    series,
    resultFiles,
    seconds,
  };
}
