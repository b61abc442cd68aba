/**
 * `rcf-stream eval`: runs a detector configuration over a labelled corpus in NAB's layout
 * and reports NAB's three normalised scores, with per-file detections (src/eval/run-eval.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { LIMITS, resolveOptions } from '../forest/options.js';
import { EVAL_DETECTOR_NAMES, EVAL_FOREST_DEFAULTS, EVAL_MODES, runEval, type EvalForestOptions, type EvalMode, type EvalProgress, type EvalResult } from '../eval/run-eval.js';
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
const fd = EVAL_FOREST_DEFAULTS;

export const EVAL_HELP = `Usage: rcf-stream eval [options]

Runs a detector over every series of a labelled corpus in NAB's layout
(<data>/data/<category>/<file>.csv with timestamp,value, and a windows
JSON): one fresh model per series, online (score, grade, then learn; no
look-ahead). Prints NAB's standard, reward_low_FP_rate and reward_low_FN_rate
scores at their corpus-optimised thresholds, and each file's detections.

Corpus
  --data DIR            corpus folder          [${DEFAULT_DATA_DIR} if it exists]
  --windows FILE        windows JSON       [DIR/labels/combined_windows.json]

Detector
  --mode M              what each row's NAB score is:                 [quality]
                          quality     the --threshold auto grade (QualityGrader)
                          aws-parity  AWS TRCF's grade (--parity aws)
                          raw         min(1, score/8), AWS's NAB entry
  --trees N             number of trees (1-1000)           [${fd.quality.numberOfTrees}; raw mode ${fd.raw.numberOfTrees}]
  --sample-size N       points kept per tree (10-4096)                     [256]
  --shingle N           consecutive records per point (1-30)                 [1]
  --time-decay X        forgetting rate  [1/(10*sample-size); raw mode ${fd.raw.timeDecay}]
  --output-after N      records before scores start              [sample-size/4]
  --seed N              random seed, the same for every series               [0]
  --engine wasm|ts      WebAssembly kernel or pure TypeScript             [wasm]

Quality grader (--mode quality)
  --short-window N      scores averaged into the short-term score            [${q.shortWindow}]
  --latest-weight X     extra weight of the newest score in it (0-1)       [${q.latestWeight}]
  --horizon N           records of score history the likelihood uses      [${q.longHorizon}]
  --deviation-floor X   least deviation, as a fraction of the mean score  [${q.minRelativeDeviation}]
  --alarm-level X       alarm at tail probability 10^-X (grade 0.5)          [${q.alarmLevel}]
  --suppression N       records after an alarm with further alarms off     [${q.suppression}]

Output
  --results-dir DIR     also write NAB result files under DIR
  --detector-name NAME  their detector name (folder, file prefix)
                        [${EVAL_DETECTOR_NAMES.quality}, ${EVAL_DETECTOR_NAMES['aws-parity']} or ${EVAL_DETECTOR_NAMES.raw}]
  --report FILE.html    also write a self-contained HTML report (charts per series)
  --json                the full result as JSON on stdout instead of tables
  --quiet               no progress line on stderr
  -h, --help            show this help
`;

const EVAL_OPTIONS = {
  data: { type: 'string' },
  windows: { type: 'string' },
  mode: { type: 'string' },
  trees: { type: 'string' },
  'sample-size': { type: 'string' },
  shingle: { type: 'string' },
  'time-decay': { type: 'string' },
  'output-after': { type: 'string' },
  seed: { type: 'string' },
  engine: { type: 'string' },
  'short-window': { type: 'string' },
  'latest-weight': { type: 'string' },
  horizon: { type: 'string' },
  'deviation-floor': { type: 'string' },
  'alarm-level': { type: 'string' },
  suppression: { type: 'string' },
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
  json: boolean;
  quiet: boolean;
  report: string | undefined;
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
  const forest: EvalForestOptions = {};
  const trees = integerOption(values, 'trees', ...LIMITS.numberOfTrees);
  if (trees !== undefined) forest.numberOfTrees = trees;
  const sampleSize = integerOption(values, 'sample-size', ...LIMITS.sampleSize);
  if (sampleSize !== undefined) {
    forest.sampleSize = sampleSize;
    // The default decay follows the sample size, as the library's does.
    if (mode !== 'raw') forest.timeDecay = 1 / (10 * sampleSize);
  }
  const shingle = integerOption(values, 'shingle', ...LIMITS.shingleSize);
  if (shingle !== undefined) forest.shingleSize = shingle;
  const timeDecay = numberOption(values, 'time-decay', 0);
  if (timeDecay !== undefined) forest.timeDecay = timeDecay;
  const outputAfter = integerOption(values, 'output-after', 1, Number.MAX_SAFE_INTEGER);
  if (outputAfter !== undefined) forest.outputAfter = outputAfter;
  const seed = stringOption(values, 'seed');
  if (seed !== undefined) {
    const text = seed.trim();
    if (!/^[+-]?\d+$/.test(text)) throw new UsageError(`--seed must be an integer, got ${JSON.stringify(seed)}`);
    const big = BigInt(text);
    if (big < -(2n ** 63n) || big >= 2n ** 63n) throw new UsageError(`--seed must fit a signed 64-bit integer, got ${text}`);
    forest.randomSeed = text;
  }
  const engine = choiceOption(values, 'engine', ['wasm', 'ts'] as const) ?? 'wasm';
  try {
    resolveOptions({ ...EVAL_FOREST_DEFAULTS[mode], ...forest, dimensions: 1, engine });
  } catch (error) {
    throw new UsageError((error as Error).message);
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
    `rcf-stream eval: mode ${r.mode}, ${r.files} series, ${formatCount(r.records)} records, ${r.seconds.toFixed(1)} s (${r.engine})`,
  );
  out.push(
    `forest: ${f.numberOfTrees} trees, sample size ${f.sampleSize}, shingle ${f.shingleSize}, time decay ${f.timeDecay}, output after ${f.outputAfter}, seed ${f.randomSeed}`,
  );
  if (r.grader !== undefined) {
    const g = r.grader;
    out.push(
      `grader: short window ${g.shortWindow}, latest weight ${g.latestWeight}, horizon ${g.longHorizon}, deviation floor ${g.minRelativeDeviation}, alarm level ${g.alarmLevel}, suppression ${g.suppression}, warmup ${g.warmup}`,
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
  let result: EvalResult;
  const report = settings.report === undefined ? undefined : new EvalReportCollector();
  try {
    if (!existsSync(settings.dataDir)) throw new Error(`corpus folder not found: ${settings.dataDir}`);
    result = await runEval({
      dataDir: settings.dataDir,
      windowsFile: settings.windowsFile,
      mode: settings.mode,
      forest: settings.forest,
      engine: settings.engine,
      grader: settings.grader,
      resultsDir: settings.resultsDir,
      detectorName: settings.detectorName,
      onProgress: progress === undefined ? undefined : (p) => progress.update(p),
      onSeries: report === undefined ? undefined : (s, scores) => report.onSeries(s, scores),
    });
    if (report !== undefined) await report.write(settings.report!, result);
  } catch (error) {
    progress?.clear();
    io.stderr.write(`rcf-stream eval: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  progress?.clear();
  io.stdout.write(settings.json ? `${JSON.stringify(result, null, 2)}\n` : formatEvalReport(result));
  return EXIT_OK;
}
