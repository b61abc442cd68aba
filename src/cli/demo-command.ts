/**
 * `rcf-stream demo` (what `npm start` runs): the reference scenario end to end, locally.
 * The temperature generator feeds a detector with the same defaults as `detect`; each
 * anomaly is printed in the reference notification format, then a summary compares the
 * alarms with the outliers the generator injected.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DEFAULT_OUTLIER_RATE, DEFAULT_SEED, TemperatureSeries } from '../generate/temperature.js';
import { LIMITS, type EngineName } from '../forest/options.js';
import { DetectionBatch, Detector } from '../detect/detector.js';
import { describeStrategy, graderFactory, parseThresholdStrategy, type ThresholdStrategy } from '../detect/strategy.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  UsageError,
  choiceOption,
  formatCount,
  integerOption,
  numberOption,
  parseCommandArgs,
  processIo,
  stringOption,
  type CliIo,
  readCommandSettings,
} from './args.js';
import { OutputSink, formatNotification } from '../io/output.js';

export const DEMO_COUNT = 20_000;
/** With --follow: slow enough to watch, fast enough to see an anomaly every few seconds. */
export const FOLLOW_RATE = 20;
/** Outliers this far from the normal level (30) are the ones a detector can be asked to catch. */
export const FAR_OUTLIER_DISTANCE = 3;
const NORMAL_LEVEL = 30;
const BATCH = 1024;
const TICK_MS = 100;

export const DEMO_HELP = `Usage: rcf-stream demo [options]

Runs the reference scenario locally: generator -> detector -> notifications, then a
summary of what was caught. Finite by default; --follow runs until Ctrl-C.

  --count N              records to generate                         [${DEMO_COUNT}]
  --follow               endless stream at a watchable rate (Ctrl-C to stop)
  --rate N               records per second                          [unlimited; ${FOLLOW_RATE} with --follow]
  --seed N               generator seed                              [${DEFAULT_SEED}]
  --outlier-rate X       probability of an injected outlier          [${DEFAULT_OUTLIER_RATE}]
  --threshold X|auto     as for detect                               [3.0]
  --parity aws           as for detect
  --trees N              number of trees                             [50]
  --forest-seed N        the detector's random seed                  [0]
  --engine wasm|ts       as for detect                               [wasm]
  -h, --help             show this help
`;

const DEMO_OPTIONS = {
  count: { type: 'string' },
  follow: { type: 'boolean' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  'outlier-rate': { type: 'string' },
  threshold: { type: 'string' },
  parity: { type: 'string' },
  trees: { type: 'string' },
  'forest-seed': { type: 'string' },
  engine: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface DemoConfig {
  count: number;
  rate: number | undefined;
  seed: number;
  outlierRate: number;
  threshold: ThresholdStrategy;
  trees: number;
  forestSeed: string;
  engine: EngineName;
}

export interface DemoSummary {
  records: number;
  anomalies: number;
  outliers: number;
  /** Injected outliers more than 3 away from 30. */
  farOutliers: number;
  caught: number;
  farCaught: number;
  /** Anomalies on records that were not injected outliers. */
  falseAlarms: number;
  seconds: number;
  recordsPerSecond: number;
}

function parseDemoArgs(argv: string[]): DemoConfig | undefined {
  const { values } = parseCommandArgs(argv, DEMO_OPTIONS, 0);
  if (values.help === true) return undefined;
  const follow = values.follow === true;
  if (follow && values.count !== undefined) throw new UsageError('--follow and --count cannot be combined');
  let threshold: ThresholdStrategy;
  try {
    threshold = parseThresholdStrategy(stringOption(values, 'threshold'), stringOption(values, 'parity'));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const forestSeed = stringOption(values, 'forest-seed') ?? '0';
  if (!/^[+-]?\d+$/.test(forestSeed.trim())) throw new UsageError(`--forest-seed must be an integer, got ${JSON.stringify(forestSeed)}`);
  return {
    count: follow ? Infinity : (integerOption(values, 'count', 0, Number.MAX_SAFE_INTEGER) ?? DEMO_COUNT),
    rate: numberOption(values, 'rate', Number.MIN_VALUE) ?? (follow ? FOLLOW_RATE : undefined),
    seed: integerOption(values, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? DEFAULT_SEED,
    outlierRate: numberOption(values, 'outlier-rate', 0, 1) ?? DEFAULT_OUTLIER_RATE,
    threshold,
    trees: integerOption(values, 'trees', LIMITS.numberOfTrees[0], LIMITS.numberOfTrees[1]) ?? 50,
    forestSeed,
    engine: choiceOption(values, 'engine', ['wasm', 'ts'] as const) ?? 'wasm',
  };
}

export async function runDemoCommand(argv: string[], io: CliIo = processIo()): Promise<number> {
  const config = await readCommandSettings('demo', DEMO_HELP, io, () => parseDemoArgs(argv));
  if (typeof config === 'number') return config;

  let detector: Detector;
  try {
    detector = await Detector.create({
      forest: { dimensions: 1, numberOfTrees: config.trees, randomSeed: config.forestSeed, engine: config.engine },
      grader: await graderFactory(config.threshold),
    });
  } catch (error) {
    io.stderr.write(`rcf-stream demo: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  const out = new OutputSink(io.stdout, false);
  const series = new TemperatureSeries({ count: config.count, seed: config.seed, outlierRate: config.outlierRate });
  const batch = new DetectionBatch(BATCH, 1);
  const outlier = new Uint8Array(BATCH);
  const time = new Float64Array(BATCH);
  const s: DemoSummary = { records: 0, anomalies: 0, outliers: 0, farOutliers: 0, caught: 0, farCaught: 0, falseAlarms: 0, seconds: 0, recordsPerSecond: 0 };

  let stopped = false;
  const onSignal = (): void => {
    stopped = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  out.write(
    `rcf-stream demo: ${config.count === Infinity ? 'endless' : formatCount(config.count)} temperature records (seed ${config.seed}), ` +
      `${config.trees} trees, threshold ${describeStrategy(config.threshold)}, ${config.engine} engine${config.rate === undefined ? '' : `, ${config.rate} records/s`}\n`,
  );

  /** Generates up to `limit` records and scores them; false once the series has ended. */
  const step = (limit: number): boolean => {
    let n = 0;
    while (n < limit && series.advance()) {
      batch.values[n] = series.value;
      outlier[n] = series.outlier ? 1 : 0;
      time[n] = series.time;
      n++;
    }
    if (n === 0) return false;
    batch.count = n;
    detector.run(batch);
    let text = '';
    for (let i = 0; i < n; i++) {
      const isOutlier = outlier[i] === 1;
      const far = isOutlier && Math.abs(batch.values[i]! - NORMAL_LEVEL) > FAR_OUTLIER_DISTANCE;
      if (isOutlier) s.outliers++;
      if (far) s.farOutliers++;
      if (batch.anomaly[i] === 1) {
        s.anomalies++;
        if (isOutlier) s.caught++;
        else s.falseAlarms++;
        if (far) s.farCaught++;
        text += `${formatNotification(time[i], batch.values, i, 1, batch.score[i]!)}\n`;
      }
    }
    s.records += n;
    out.write(text);
    return n === limit;
  };

  const started = performance.now();
  try {
    if (config.rate === undefined) {
      while (!stopped && !out.stopped && step(BATCH)) {
        if (out.needsDrain) await out.drain();
        // Lets Ctrl-C through on long runs.
        else if (s.records % (BATCH * 64) === 0) await yieldToEventLoop();
      }
    } else {
      const rate = config.rate;
      let more = true;
      while (more && !stopped && !out.stopped) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate) + 1 - s.records;
        if (due > 0) more = step(Math.min(due, BATCH)) || due > BATCH;
        if (more) await sleep(TICK_MS);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    detector.dispose();
  }
  s.seconds = (performance.now() - started) / 1000;
  s.recordsPerSecond = s.seconds > 0 ? s.records / s.seconds : 0;
  out.write(formatDemoSummary(s));
  await out.finish();
  return EXIT_OK;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`;
}

export function formatDemoSummary(s: DemoSummary): string {
  const rows: [string, string][] = [
    ['records', formatCount(s.records)],
    ['anomalies', formatCount(s.anomalies)],
    ['injected outliers', `${formatCount(s.outliers)} (${formatCount(s.farOutliers)} more than ${FAR_OUTLIER_DISTANCE} away from ${NORMAL_LEVEL})`],
    [
      'caught',
      `${formatCount(s.farCaught)} of ${formatCount(s.farOutliers)} far outliers (${percent(s.farCaught, s.farOutliers)}), ` +
        `${formatCount(s.caught)} of all ${formatCount(s.outliers)} (${percent(s.caught, s.outliers)})`,
    ],
    ['false alarms', formatCount(s.falseAlarms)],
    ['records/s', formatCount(s.recordsPerSecond)],
  ];
  return `\nSummary\n${rows.map(([k, v]) => `  ${k.padEnd(18)} ${v}`).join('\n')}\n`;
}
