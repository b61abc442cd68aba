/**
 * `rcf-stream demo` (what `npm start` runs): the reference scenario end to end, locally.
 * Thin wiring over the pipeline (src/pipeline): the temperature generator is the Source,
 * the BatchProcessor scores with the same defaults as `detect`, a text sink prints each
 * anomaly in the reference notification format, and a tally sink feeds the summary that
 * compares the alarms with the outliers the generator injected.
 */
import { DEFAULT_OUTLIER_RATE, DEFAULT_SEED } from '../generate/temperature.js';
import { TEMPERATURE_SHARD, TemperatureSource } from '../generate/temperature-source.js';
import type { DetectionSettings } from '../detect/settings.js';
import { describeStrategy } from '../detect/strategy.js';
import { DetectionOptionSet, readDetectionSettings } from '../detect/options.js';
import { OptionError } from '../util/option-error.js';
import { formatHelpSections } from '../util/help-text.js';
import { BatchProcessor } from '../pipeline/batch-processor.js';
import type { ScoredBatch, Sink } from '../pipeline/contracts.js';
import { ScopedModels } from '../pipeline/scoped-models.js';
import { deliverAll } from '../pipeline/sinks.js';
import { TextNotificationSink } from '../pipeline/text-notification-sink.js';
import {
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_OK,
  UsageError,
  formatCount,
  integerOption,
  numberOption,
  parseCommandArgs,
  processIo,
  type CliIo,
  readCommandSettings,
} from './args.js';
import { OutputSink } from '../io/output.js';

export const DEMO_COUNT = 20_000;
/** With --follow: slow enough to watch, fast enough to see an anomaly every few seconds. */
export const FOLLOW_RATE = 20;
/** Outliers this far from the normal level (30) are the ones a detector can be asked to catch. */
export const FAR_OUTLIER_DISTANCE = 3;
const NORMAL_LEVEL = 30;
const BATCH = 1024;
const TICK_MS = 100;
const PROGRESS_MS = 250;

/** The detection options the demo takes from the table (src/detect/options.ts); its --seed is the generator's. */
const DETECTION = new DetectionOptionSet(['trees', 'sample-size', 'shingle', 'time-decay', 'output-after', 'seed', 'engine', 'threshold', 'parity'], {
  rename: { seed: 'forest-seed' },
});

export const DEMO_HELP = `Usage: rcf-stream demo [options]

Runs the reference scenario locally: generator -> detector -> notifications, then a
summary of what was caught. Finite by default; --follow runs until Ctrl-C.

${formatHelpSections([
  {
    title: 'Generator',
    rows: [
      { option: '--count N', text: 'records to generate', default: String(DEMO_COUNT) },
      { option: '--follow', text: 'endless stream at a watchable rate (Ctrl-C to stop)' },
      { option: '--rate N', text: 'records per second', default: `unlimited; ${FOLLOW_RATE} with --follow` },
      { option: '--seed N', text: 'generator seed', default: String(DEFAULT_SEED) },
      { option: '--outlier-rate X', text: 'probability of an injected outlier (0-1)', default: String(DEFAULT_OUTLIER_RATE) },
    ],
  },
  { title: 'Detector (as for rcf-stream detect; --forest-seed is its --seed)', rows: [...DETECTION.rows('model'), ...DETECTION.rows('decision')] },
  { rows: [{ option: '-h, --help', text: 'show this help' }] },
])}
Exit status: 0 when done, 1 on an error, 2 for bad options, 130 when stopped by
Ctrl-C (SIGINT) or SIGTERM (the summary is still printed).
`;

const DEMO_OPTIONS = {
  count: { type: 'string' },
  follow: { type: 'boolean' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  'outlier-rate': { type: 'string' },
  ...DETECTION.parseOptions,
  help: { type: 'boolean', short: 'h' },
} as const;

interface DemoConfig {
  count: number;
  rate: number | undefined;
  seed: number;
  outlierRate: number;
  /** Read as detect reads them; the records are the generator's {time, value}. */
  settings: DetectionSettings;
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
  let settings: DetectionSettings;
  try {
    settings = readDetectionSettings(DETECTION.tableValues(values));
  } catch (error) {
    if (error instanceof OptionError) throw new UsageError(DETECTION.describe(error));
    throw error;
  }
  settings.mapping = { fields: ['value'], timeField: 'time' };
  return {
    count: follow ? Infinity : (integerOption(values, 'count', 0, Number.MAX_SAFE_INTEGER) ?? DEMO_COUNT),
    rate: numberOption(values, 'rate', Number.MIN_VALUE) ?? (follow ? FOLLOW_RATE : undefined),
    seed: integerOption(values, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? DEFAULT_SEED,
    outlierRate: numberOption(values, 'outlier-rate', 0, 1) ?? DEFAULT_OUTLIER_RATE,
    settings,
  };
}

/**
 * Counts what the demo's summary reports: every record of a batch against the source's
 * labels, and each delivered anomaly (by its record id) as caught or a false alarm.
 */
class DemoTally implements Sink {
  readonly name = 'summary';
  constructor(
    readonly source: TemperatureSource,
    readonly s: DemoSummary,
  ) {}

  async deliver(batch: ScoredBatch): Promise<void> {
    const { first, outlier, value } = this.source.labels;
    const far = (i: number): boolean => outlier[i] === 1 && Math.abs(value[i]! - NORMAL_LEVEL) > FAR_OUTLIER_DISTANCE;
    for (let i = 0; i < outlier.length; i++) {
      if (outlier[i] === 1) this.s.outliers++;
      if (far(i)) this.s.farOutliers++;
    }
    this.s.records += batch.records;
    this.s.anomalies += batch.anomalies;
    for (const o of batch.outputs) {
      const i = Number(o.recordId.slice(TEMPERATURE_SHARD.length + 1)) - first;
      if (outlier[i] === 1) this.s.caught++;
      else this.s.falseAlarms++;
      if (far(i)) this.s.farCaught++;
    }
  }

  async close(): Promise<void> {}
}

/** A redrawn status line on a terminal's stderr while a paced demo runs (--follow): something shows from the start. */
class DemoProgress {
  #shown = false;
  #lastDraw = -Infinity;
  constructor(
    readonly stderr: CliIo['stderr'],
    readonly enabled: boolean,
  ) {}

  draw(s: DemoSummary, seconds: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.#lastDraw < PROGRESS_MS) return;
    this.#lastDraw = now;
    this.stderr.write(`\r\x1b[K${formatCount(s.records)} records, ${formatCount(s.anomalies)} anomalies, ${seconds.toFixed(0)} s (Ctrl-C stops)`);
    this.#shown = true;
  }

  clear(): void {
    if (!this.#shown) return;
    this.stderr.write('\r\x1b[K');
    this.#shown = false;
    this.#lastDraw = -Infinity;
  }
}

export async function runDemoCommand(argv: string[], io: CliIo = processIo()): Promise<number> {
  const config = await readCommandSettings('demo', DEMO_HELP, io, () => parseDemoArgs(argv));
  if (typeof config === 'number') return config;

  // The demo is wiring: the generator as a Source, the pipeline's record stage (the
  // same parsing, scoring and notification text as detect and run), text sinks.
  const settings = config.settings;
  const models = new ScopedModels('shard', { forest: settings.forest, threshold: settings.threshold, attribution: false, keyed: false });
  const processor = new BatchProcessor({ settings, models, emit: 'anomalies', notifications: {} });
  try {
    await processor.prepare(TEMPERATURE_SHARD);
  } catch (error) {
    io.stderr.write(`rcf-stream demo: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  const out = new OutputSink(io.stdout, false);
  const source = new TemperatureSource({ count: config.count, seed: config.seed, outlierRate: config.outlierRate, rate: config.rate, batchRecords: BATCH, tickMs: TICK_MS });
  const s: DemoSummary = { records: 0, anomalies: 0, outliers: 0, farOutliers: 0, caught: 0, farCaught: 0, falseAlarms: 0, seconds: 0, recordsPerSecond: 0 };
  const notifications = new TextNotificationSink(out);
  const sinks: Sink[] = [notifications, new DemoTally(source, s)];
  const progress = new DemoProgress(io.stderr, config.rate !== undefined && io.stderr.isTTY === true);

  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    void source.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  out.write(
    `rcf-stream demo: ${config.count === Infinity ? 'endless' : formatCount(config.count)} temperature records (seed ${config.seed}), ` +
      `${settings.forest.numberOfTrees} trees, threshold ${describeStrategy(settings.threshold)}, ${settings.forest.engine} engine${config.rate === undefined ? '' : `, ${config.rate} records/s`}\n`,
  );

  const started = performance.now();
  let exitCode = EXIT_OK;
  try {
    for await (const batch of source.start()) {
      const scored = processor.process(batch.shardId, batch.records);
      if (scored.notifications.length > 0) progress.clear();
      await deliverAll(sinks, scored);
      if (notifications.stopped) break;
      progress.draw(s, (performance.now() - started) / 1000);
    }
  } catch (error) {
    progress.clear();
    io.stderr.write(`rcf-stream demo: ${(error as Error).message}\n`);
    exitCode = EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    models.dispose();
  }
  progress.clear();
  s.seconds = (performance.now() - started) / 1000;
  s.recordsPerSecond = s.seconds > 0 ? s.records / s.seconds : 0;
  out.write(formatDemoSummary(s));
  await out.finish();
  if (interrupted && exitCode === EXIT_OK) exitCode = EXIT_INTERRUPTED;
  return exitCode;
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
