/**
 * `rcf-stream eval`: runs a detector configuration over a labelled corpus in NAB's layout
 * and reports NAB's three normalised scores, with per-file detections (src/eval/run-eval.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DetectionOptionSet, checkForest, readFieldMapping, readForestOverrides } from '../detect/options.js';
import type { FieldMapping } from '../io/record-parser.js';
import { OptionError } from '../util/option-error.js';
import { formatHelpSections } from '../util/help-text.js';
import { EVAL_DETECTOR_NAMES, EVAL_FOREST_DEFAULTS, EVAL_MODES, runEval, type EvalForestOptions, type EvalMode, type EvalProgress, type EvalResult } from '../eval/run-eval.js';
import { crossValidateCategories, type CrossValidation, type NabTriple } from '../eval/cross-validate.js';
import { EvalReportCollector } from '../report/eval-report.js';
import { QUALITY_GRADER_DEFAULTS, type QualityGraderOptions } from '../detect/quality-grader.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  UsageError,
  choiceOption,
  formatCount,
  integerOption,
  numberOption,
  parseCommandArgs,
  processIo,
  stringOption,
  type CliIo,
} from './args.js';

/** Where the corpus usually sits relative to a checkout (the shared data next to it). */
export const DEFAULT_DATA_DIR = '../shared/data/nab';

const q = QUALITY_GRADER_DEFAULTS;

/** The detection options eval takes from the table (src/detect/options.ts), with its modes' defaults. */
const DETECTION = new DetectionOptionSet(['fields', 'key-field', 'trees', 'sample-size', 'shingle', 'time-decay', 'output-after', 'seed', 'engine'], {
  defaults: {
    trees: `${EVAL_FOREST_DEFAULTS.quality.numberOfTrees}; raw mode ${EVAL_FOREST_DEFAULTS.raw.numberOfTrees}`,
    'time-decay': `1/(10*sample-size); raw mode ${EVAL_FOREST_DEFAULTS.raw.timeDecay}`,
  },
});

export const EVAL_HELP = `Usage: rcf-stream eval [options]

Runs a detector over every series of a labelled corpus in NAB's layout
(<data>/data/<category>/<file>.csv with timestamp,value, and a windows
JSON): one fresh model per series, online (score, grade, then learn; no
look-ahead). Prints NAB's standard, reward_low_FP_rate and reward_low_FN_rate
scores at their corpus-optimised thresholds, per category, and each file's
detections.

${formatHelpSections([
  {
    title: 'Corpus',
    rows: [
      { option: '--data DIR', text: 'corpus folder', default: `${DEFAULT_DATA_DIR} if it exists` },
      { option: '--windows FILE', text: 'windows JSON', default: 'DIR/labels/combined_windows.json' },
      ...DETECTION.rows('input'),
      { option: '--no-timestamps', text: 'grade as if records carried no timestamp' },
    ],
  },
  {
    title: 'Runs',
    rows: [
      { option: '--seeds A-B|A,B,..', text: 'one run per seed; prints each, their mean and minimum' },
      { option: '--cv categories', text: "leave-one-category-out cross-validation of the quality grader's settings (grid in src/eval/cross-validate.ts)" },
    ],
  },
  {
    title: 'Detector',
    rows: [
      {
        option: '--mode M',
        text: "what each row's NAB score is. quality: the --threshold auto grade (QualityGrader); aws-parity: AWS TRCF's grade (--parity aws); raw: min(1, score/8), AWS's NAB entry",
        default: 'quality',
      },
      ...DETECTION.rows('model'),
    ],
    notes: ['One fresh model per series (and per key with --key-field), every one with the same --seed.'],
  },
  {
    title: 'Quality grader (--mode quality)',
    rows: [
      { option: '--short-window N', text: 'scores averaged into the short-term score', default: String(q.shortWindow) },
      { option: '--latest-weight X', text: 'extra weight of the newest score in it (0-1)', default: String(q.latestWeight) },
      { option: '--horizon N', text: 'records of score history the likelihood uses', default: String(q.longHorizon) },
      { option: '--deviation-floor X', text: 'least deviation, as a fraction of the mean score', default: String(q.minRelativeDeviation) },
      { option: '--alarm-level X', text: 'alarm at tail probability 10^-X (grade 0.5)', default: String(q.alarmLevel) },
      { option: '--suppression N', text: 'records after an alarm with further alarms off', default: String(q.suppression) },
      { option: '--suppression-time H', text: 'hours after an alarm with further alarms off', default: String(q.suppressionTime / 3_600_000) },
      { option: '--seasonal-factor X', text: "baseline >= X times the time slot's usual daily peak", default: String(q.seasonalFactor) },
      { option: '--context-margin X', text: 'value context alarms at alarm level + X (1000: off)', default: String(q.contextMargin) },
    ],
  },
  {
    title: 'Output',
    rows: [
      { option: '--results-dir DIR', text: 'also write NAB result files under DIR' },
      {
        option: '--detector-name NAME',
        text: 'their detector name (folder, file prefix)',
        default: `${EVAL_DETECTOR_NAMES.quality}, ${EVAL_DETECTOR_NAMES['aws-parity']} or ${EVAL_DETECTOR_NAMES.raw}`,
      },
      { option: '--report FILE.html', text: "also write a self-contained HTML report (charts per series; with --seeds, the first seed's run)" },
      { option: '--json', text: 'the full result as JSON on stdout instead of tables' },
      { option: '--quiet', text: 'no progress line on stderr' },
      { option: '-h, --help', text: 'show this help' },
    ],
  },
])}`;

const EVAL_OPTIONS = {
  ...DETECTION.parseOptions,
  data: { type: 'string' },
  windows: { type: 'string' },
  mode: { type: 'string' },
  'short-window': { type: 'string' },
  'latest-weight': { type: 'string' },
  horizon: { type: 'string' },
  'deviation-floor': { type: 'string' },
  'alarm-level': { type: 'string' },
  suppression: { type: 'string' },
  'suppression-time': { type: 'string' },
  'seasonal-factor': { type: 'string' },
  'context-margin': { type: 'string' },
  'no-timestamps': { type: 'boolean' },
  seeds: { type: 'string' },
  cv: { type: 'string' },
  'results-dir': { type: 'string' },
  'detector-name': { type: 'string' },
  report: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface EvalSettings {
  dataDir: string;
  windowsFile: string | undefined;
  mode: EvalMode;
  forest: EvalForestOptions;
  engine: 'wasm' | 'ts';
  grader: QualityGraderOptions | undefined;
  resultsDir: string | undefined;
  detectorName: string | undefined;
  fields: string[] | undefined;
  keyField: string | undefined;
  timestamps: boolean;
  seeds: number[] | undefined;
  cv: boolean;
  json: boolean;
  quiet: boolean;
  report: string | undefined;
}

/** "0-4" or "0,2,7". */
export function parseSeeds(text: string): number[] {
  const t = text.trim();
  const range = /^(\d+)-(\d+)$/.exec(t);
  let seeds: number[];
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (b < a || b - a >= 1000) throw new UsageError(`--seeds range must be A-B with A <= B and at most 1000 seeds, got ${JSON.stringify(text)}`);
    seeds = Array.from({ length: b - a + 1 }, (_, i) => a + i);
  } else if (/^\d+(,\d+)*$/.test(t)) {
    seeds = t.split(',').map(Number);
  } else {
    throw new UsageError(`--seeds must be A-B or a comma-separated list of non-negative integers, got ${JSON.stringify(text)}`);
  }
  if (!seeds.every(Number.isSafeInteger)) throw new UsageError(`--seeds: seeds must be safe integers, got ${JSON.stringify(text)}`);
  return seeds;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function readSettings(values: Record<string, string | boolean | undefined>, cwd: string): EvalSettings {
  const mode = choiceOption(values, 'mode', EVAL_MODES) ?? 'quality';
  let dataDir = stringOption(values, 'data');
  if (dataDir === undefined) {
    const fallback = resolve(cwd, DEFAULT_DATA_DIR);
    if (!isDirectory(fallback)) throw new UsageError(`--data is required (no corpus at ${DEFAULT_DATA_DIR})`);
    dataDir = fallback;
  }
  // The table's options, read and checked as detect does; the defaults are the mode's.
  let given: ReturnType<typeof readForestOverrides>;
  let mapping: FieldMapping;
  const tableValues = DETECTION.tableValues(values);
  try {
    given = readForestOverrides(tableValues);
    mapping = readFieldMapping(tableValues);
  } catch (error) {
    if (error instanceof OptionError) throw new UsageError(DETECTION.describe(error));
    throw error;
  }
  const { engine = 'wasm', ...forest } = given;
  // The default decay follows the sample size, as the library's does.
  if (forest.sampleSize !== undefined && forest.timeDecay === undefined && mode !== 'raw') forest.timeDecay = 1 / (10 * forest.sampleSize);
  const seed = forest.randomSeed;
  const fields = values['fields'] !== undefined ? mapping.fields : undefined;
  if (fields?.includes('timestamp') === true) throw new UsageError('--fields must name value columns (not "timestamp")');
  const keyField = mapping.keyField;
  if (keyField !== undefined && (keyField === 'timestamp' || (fields ?? ['value']).includes(keyField))) {
    throw new UsageError('--key-field must be a column other than the timestamp and the value fields');
  }
  const seedsText = stringOption(values, 'seeds');
  const seeds = seedsText === undefined ? undefined : parseSeeds(seedsText);
  if (seeds !== undefined && seed !== undefined) throw new UsageError('--seed and --seeds are exclusive');
  const cvText = stringOption(values, 'cv');
  if (cvText !== undefined && cvText !== 'categories') throw new UsageError(`--cv must be "categories", got ${JSON.stringify(cvText)}`);
  if (cvText !== undefined && mode !== 'quality') throw new UsageError('--cv applies only to --mode quality');
  if (cvText !== undefined && stringOption(values, 'report') !== undefined) throw new UsageError('--report charts one evaluation run; it does not combine with --cv');
  try {
    checkForest({ ...EVAL_FOREST_DEFAULTS[mode], ...forest, dimensions: fields?.length ?? 1, engine });
  } catch (error) {
    if (error instanceof OptionError) throw new UsageError(DETECTION.describe(error));
    throw error;
  }

  const grader: QualityGraderOptions = {};
  const shortWindow = integerOption(values, 'short-window', 1, 1000);
  if (shortWindow !== undefined) grader.shortWindow = shortWindow;
  const latestWeight = numberOption(values, 'latest-weight', 0, 1);
  if (latestWeight !== undefined) grader.latestWeight = latestWeight;
  const horizon = integerOption(values, 'horizon', 1, 1e9);
  if (horizon !== undefined) grader.longHorizon = horizon;
  const floor = numberOption(values, 'deviation-floor', 0);
  if (floor !== undefined) grader.minRelativeDeviation = floor;
  const alarmLevel = numberOption(values, 'alarm-level', Number.MIN_VALUE, 300);
  if (alarmLevel !== undefined) grader.alarmLevel = alarmLevel;
  const suppression = integerOption(values, 'suppression', 0, 1e9);
  if (suppression !== undefined) grader.suppression = suppression;
  const suppressionHours = numberOption(values, 'suppression-time', 0, 1e6);
  if (suppressionHours !== undefined) grader.suppressionTime = suppressionHours * 3_600_000;
  const seasonalFactor = numberOption(values, 'seasonal-factor', 0, 10);
  if (seasonalFactor !== undefined) grader.seasonalFactor = seasonalFactor;
  const contextMargin = numberOption(values, 'context-margin', 0, 1000);
  if (contextMargin !== undefined) grader.contextMargin = contextMargin;
  const hasGraderOptions = Object.keys(grader).length > 0;
  if (hasGraderOptions && mode !== 'quality') {
    throw new UsageError('the quality grader options (--short-window ... --suppression) apply only to --mode quality');
  }

  const detectorName = stringOption(values, 'detector-name');
  if (detectorName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(detectorName)) {
    throw new UsageError(`--detector-name must be letters, digits, ".", "_" or "-", got ${JSON.stringify(detectorName)}`);
  }
  return {
    dataDir,
    windowsFile: stringOption(values, 'windows'),
    mode,
    forest,
    engine,
    grader: hasGraderOptions ? grader : undefined,
    resultsDir: stringOption(values, 'results-dir'),
    detectorName,
    fields,
    keyField,
    timestamps: values['no-timestamps'] !== true,
    seeds,
    cv: cvText !== undefined,
    json: values.json === true,
    quiet: values.quiet === true,
    report: stringOption(values, 'report'),
  };
}

/** One redrawn progress line on a terminal (at most every 100 ms). */
class EvalProgressLine {
  #last = -Infinity;
  #shown = false;
  constructor(private readonly stream: CliIo['stderr']) {}

  update(p: EvalProgress): void {
    const now = performance.now();
    if (p.filesDone < p.files && now - this.#last < 100) return;
    this.#last = now;
    const width = 20;
    const fraction = p.records > 0 ? p.recordsDone / p.records : 1;
    const filled = Math.round(fraction * width);
    let line =
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.filesDone}/${p.files} series` +
      `  ${formatCount(p.recordsDone)}/${formatCount(p.records)} records  ${p.seconds.toFixed(1)} s  ${p.current}`;
    const columns = this.stream.columns;
    if (columns !== undefined && columns > 1 && line.length >= columns) line = line.slice(0, columns - 1);
    this.stream.write(`\r\x1b[K${line}`);
    this.#shown = true;
  }

  clear(): void {
    if (this.#shown) this.stream.write('\r\x1b[K');
    this.#shown = false;
  }
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** The human-readable report. */
export function formatEvalReport(r: EvalResult): string {
  const f = r.forest;
  const out: string[] = [];
  out.push(
    `rcf-stream eval: mode ${r.mode}, ${r.files} series, ${formatCount(r.records)} records, ${r.seconds.toFixed(1)} s (${r.engine})` +
      `, fields ${r.fields.join(',')}${r.keyField === undefined ? '' : `, key ${r.keyField}`}${r.timestamps ? '' : ', timestamps ignored'}`,
  );
  out.push(
    `forest: ${f.numberOfTrees} trees, sample size ${f.sampleSize}, shingle ${f.shingleSize}, time decay ${f.timeDecay}, output after ${f.outputAfter}, seed ${f.randomSeed}`,
  );
  if (r.grader !== undefined) {
    const g = r.grader;
    out.push(
      `grader: short window ${g.shortWindow}, latest weight ${g.latestWeight}, horizon ${g.longHorizon}, deviation floor ${g.minRelativeDeviation}, alarm level ${g.alarmLevel}, suppression ${g.suppression} records / ${g.suppressionTime / 3_600_000} h, warmup ${g.warmup}, seasonal ${g.seasonalFactor} x daily peak (${g.seasonalSlots} slots, ${g.seasonalDays} days, from ${g.seasonalMinDays}), context margin ${g.contextMargin}`,
    );
  }
  out.push('');
  out.push(`${pad('profile', 20)} ${pad('score', 7, true)} ${pad('threshold', 10, true)} ${pad('TP', 4, true)} ${pad('FP', 5, true)} ${pad('FN', 4, true)}`);
  for (const p of Object.values(r.profiles)) {
    out.push(
      `${pad(p.profile, 20)} ${pad(p.score.toFixed(1), 7, true)} ${pad(p.threshold.toFixed(4), 10, true)} ${pad(String(p.tp), 4, true)} ${pad(String(p.fp), 5, true)} ${pad(String(p.fn), 4, true)}`,
    );
  }
  out.push('');
  out.push(formatCategories(r));
  out.push('');
  const standard = r.profiles.standard;
  const nameWidth = Math.max(4, ...r.series.map((s) => s.name.length));
  out.push(`per file, standard profile (threshold ${standard.threshold.toFixed(4)}):`);
  out.push(
    `${pad('file', nameWidth)} ${pad('rows', 7, true)} ${pad('windows', 7, true)} ${pad('TP', 3, true)} ${pad('FP', 4, true)} ${pad('FN', 3, true)} ${pad('raw', 7, true)}  first detections`,
  );
  standard.perFile.forEach((file, i) => {
    const s = r.series[i]!;
    const shown = file.detections.slice(0, 3).join(', ') + (file.detections.length > 3 ? `, ... (${file.detections.length})` : '');
    out.push(
      `${pad(file.name, nameWidth)} ${pad(String(s.rows), 7, true)} ${pad(String(s.windows), 7, true)} ${pad(String(file.tp), 3, true)} ${pad(String(file.fp), 4, true)} ${pad(String(file.fn), 3, true)} ${pad(file.raw.toFixed(2), 7, true)}  ${shown}`,
    );
  });
  if (r.resultFiles.length > 0) {
    out.push('');
    out.push(`wrote ${r.resultFiles.length} NAB result files for detector "${r.detectorName}"`);
  }
  return `${out.join('\n')}\n`;
}

const fmt1 = (x: number | null): string => (x === null ? '-' : x.toFixed(1));

/** Per category: each profile's share, normalised, at the corpus thresholds. */
export function formatCategories(r: EvalResult): string {
  const cats = r.profiles.standard.perCategory;
  const width = Math.max(8, ...cats.map((c) => c.category.length));
  const out = [`per category (at the corpus thresholds; "-" = no scored windows):`];
  out.push(`${pad('category', width)} ${pad('files', 5, true)} ${pad('windows', 7, true)} ${pad('standard', 8, true)} ${pad('low FP', 7, true)} ${pad('low FN', 7, true)} ${pad('TP', 3, true)} ${pad('FP', 4, true)} ${pad('FN', 3, true)}`);
  cats.forEach((c, i) => {
    const lowFp = r.profiles.reward_low_FP_rate.perCategory[i]!;
    const lowFn = r.profiles.reward_low_FN_rate.perCategory[i]!;
    out.push(
      `${pad(c.category, width)} ${pad(String(c.files), 5, true)} ${pad(String(c.windows), 7, true)} ${pad(fmt1(c.score), 8, true)} ${pad(fmt1(lowFp.score), 7, true)} ${pad(fmt1(lowFn.score), 7, true)} ${pad(String(c.tp), 3, true)} ${pad(String(c.fp), 4, true)} ${pad(String(c.fn), 3, true)}`,
    );
  });
  return out.join('\n');
}

const tripleText = (t: NabTriple): string => `${t.standard.toFixed(1)} / ${t.reward_low_FP_rate.toFixed(1)} / ${t.reward_low_FN_rate.toFixed(1)}`;

function describeGrader(g: QualityGraderOptions): string {
  return `suppression ${g.suppression} records / ${(g.suppressionTime ?? 0) / 3_600_000} h, alarm level ${g.alarmLevel}, context margin ${g.contextMargin}`;
}

export interface SeedRun {
  seed: number;
  scores: NabTriple;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean and minimum of each profile over seeds. */
export function summariseSeeds(runs: readonly SeedRun[]): { mean: NabTriple; min: NabTriple } {
  const of = (k: keyof NabTriple): number[] => runs.map((r) => r.scores[k]);
  const keys = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;
  const m = {} as NabTriple;
  const lo = {} as NabTriple;
  for (const k of keys) {
    m[k] = mean(of(k));
    lo[k] = Math.min(...of(k));
  }
  return { mean: m, min: lo };
}

export function formatSeeds(runs: readonly SeedRun[], label = 'seeds'): string {
  const out = [`${label} (standard / low FP / low FN):`];
  for (const r of runs) out.push(`  seed ${pad(String(r.seed), 4)} ${tripleText(r.scores)}`);
  const { mean: m, min } = summariseSeeds(runs);
  out.push(`  mean      ${tripleText(m)}`);
  out.push(`  min       ${tripleText(min)}`);
  return out.join('\n');
}

export function formatCrossValidation(cv: CrossValidation, seed: number): string {
  const out = [`leave-one-category-out, seed ${seed} (${cv.settings} grader settings, ${cv.seconds.toFixed(1)} s):`];
  out.push(`  defaults                 ${tripleText(cv.defaults)}`);
  out.push(`  best on all categories   ${tripleText(cv.inSample.scores)}  (${describeGrader(cv.inSample.grader)})`);
  out.push(`  cross-validated          ${tripleText(cv.crossValidated)}`);
  for (const f of cv.folds) out.push(`    without ${pad(f.category, 24)} ${describeGrader(f.grader)}`);
  return out.join('\n');
}

/**
 * Runs `rcf-stream eval` with its arguments (after "eval"). Returns the exit code: 0 done,
 * 1 a corpus or output problem, 2 unusable options.
 */
export async function runEvalCommand(argv: string[], io: CliIo = processIo(), cwd: string = process.cwd()): Promise<number> {
  let settings: EvalSettings;
  try {
    const { values } = parseCommandArgs(argv, EVAL_OPTIONS, 0);
    if (values.help === true) {
      io.stdout.write(EVAL_HELP);
      return EXIT_OK;
    }
    settings = readSettings(values, cwd);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`rcf-stream eval: ${error.message} (see rcf-stream eval --help)\n`);
    return EXIT_USAGE;
  }

  const progress = !settings.quiet && io.stderr.isTTY === true ? new EvalProgressLine(io.stderr) : undefined;
  const columns = {
    ...(settings.fields === undefined ? {} : { fields: settings.fields }),
    ...(settings.keyField === undefined ? {} : { keyField: settings.keyField }),
  };
  const common = {
    dataDir: settings.dataDir,
    windowsFile: settings.windowsFile,
    engine: settings.engine,
    grader: settings.grader,
    columns,
    timestamps: settings.timestamps,
  };
  const seeds = settings.seeds;
  const report = settings.report === undefined ? undefined : new EvalReportCollector();
  try {
    if (!existsSync(settings.dataDir)) throw new Error(`corpus folder not found: ${settings.dataDir}`);
    if (settings.cv) {
      const runs: Array<{ seed: number; cv: CrossValidation }> = [];
      for (const seed of seeds ?? [Number(settings.forest.randomSeed ?? 0)]) {
        runs.push({ seed, cv: await crossValidateCategories({ ...common, forest: { ...settings.forest, randomSeed: seed } }) });
      }
      if (settings.json) {
        io.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
      } else {
        const text = runs.map((r) => formatCrossValidation(r.cv, r.seed));
        if (runs.length > 1) {
          text.push(formatSeeds(runs.map((r) => ({ seed: r.seed, scores: r.cv.defaults })), 'defaults per seed'));
          text.push(formatSeeds(runs.map((r) => ({ seed: r.seed, scores: r.cv.inSample.scores })), 'best on all categories per seed'));
          text.push(formatSeeds(runs.map((r) => ({ seed: r.seed, scores: r.cv.crossValidated })), 'cross-validated per seed'));
        }
        io.stdout.write(`${text.join('\n\n')}\n`);
      }
      return EXIT_OK;
    }
    const results: EvalResult[] = [];
    for (const seed of seeds ?? [undefined]) {
      const forest = seed === undefined ? settings.forest : { ...settings.forest, randomSeed: seed };
      results.push(
        await runEval({
          ...common,
          mode: settings.mode,
          forest,
          // One set of result files: the first seed's.
          resultsDir: results.length === 0 ? settings.resultsDir : undefined,
          detectorName: settings.detectorName,
          onProgress: progress === undefined ? undefined : (p) => progress.update(p),
          // One report: the first seed's.
          onSeries: report === undefined || results.length > 0 ? undefined : (s, scores) => report.onSeries(s, scores),
        }),
      );
    }
    if (report !== undefined) await report.write(settings.report!, results[0]!);
    progress?.clear();
    if (seeds === undefined) {
      io.stdout.write(settings.json ? `${JSON.stringify(results[0], null, 2)}\n` : formatEvalReport(results[0]!));
    } else {
      const runs = results.map((r, i) => ({
        seed: seeds[i]!,
        scores: { standard: r.profiles.standard.score, reward_low_FP_rate: r.profiles.reward_low_FP_rate.score, reward_low_FN_rate: r.profiles.reward_low_FN_rate.score },
      }));
      if (settings.json) io.stdout.write(`${JSON.stringify({ runs: results, ...summariseSeeds(runs) }, null, 2)}\n`);
      else io.stdout.write(`${formatEvalReport(results[0]!)}\n${formatSeeds(runs)}\n`);
    }
  } catch (error) {
    progress?.clear();
    io.stderr.write(`rcf-stream eval: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}
