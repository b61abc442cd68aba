/**
 * `rcf-stream detect`: NDJSON or CSV records in, one NDJSON result per record out. Thin
 * wiring over the pipeline (src/pipeline):
 *
 *   LineSource (file | stdin) -> BatchProcessor (parse, score, format; models on this
 *        thread or on worker threads) -> sinks: bad-record report (stderr) and dead-letter
 *        file, output (stdout | file), notifications, stats and progress
 *        -> commit: the models saved to --state (every --state-every records, and at the end)
 *
 * Batches come from the source when full and as soon as the input pauses, so a slow live
 * stream is not held back; they are delivered to the sinks in input order.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { once } from 'node:events';
import { access, open, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import type { ForestOptions } from '../forest/options.js';
import { DeadLetterWriter } from '../io/dead-letter.js';
import { DEFAULT_MAX_LINE_BYTES } from '../io/line-reader.js';
import { createRecordParser, type FieldMapping, type InputFormat, type RecordParser } from '../io/record-parser.js';
import type { RecordDetector } from '../detect/detector.js';
import type { DetectorSpec } from '../detect/detector-spec.js';
import { ModelWorkerPool } from '../detect/model-workers.js';
import { decodeModels, encodeModels, modelFingerprint, ModelMismatchError } from '../pipeline/models.js';
import type { DetectionSettings } from '../detect/settings.js';
import { DetectionOptionSet, flagOf, readDetectionSettings } from '../detect/options.js';
import { formatHelpSections } from '../util/help-text.js';
import { OptionError, describeOptionError } from '../util/option-error.js';
import { describeStrategy, graderFactory, type ThresholdStrategy } from '../detect/strategy.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  EXIT_INTERRUPTED,
  UsageError,
  choiceOption,
  formatCount,
  integerOption,
  parseCommandArgs,
  processIo,
  stringOption,
  type CliIo,
  readCommandSettings,
} from './args.js';
import { OutputSink } from '../io/output.js';
import { BatchProcessor, CHUNK_RECORDS } from '../pipeline/batch-processor.js';
import type { ScoredBatch, Sink } from '../pipeline/contracts.js';
import { LINE_PARTITION, LineSource } from '../pipeline/line-source.js';
import { ScopedModels } from '../pipeline/scoped-models.js';
import { DeadLetterFileSink, StreamOutputSink } from '../pipeline/sinks.js';
import { TextNotificationSink } from '../pipeline/text-notification-sink.js';
import { writeFileAtomicSync } from '../pipeline/atomic-write.js';
import { ProgressBar } from './progress.js';
import { DetectPlotCollector } from '../report/detect-plot.js';
import { RcfStreamError } from '../util/errors.js';

/** Batches being scored on worker threads at once (one processor each), while the next is read. */
const MAX_IN_FLIGHT = 3;
/** Read size: fewer, larger chunks cost less per line. */
const READ_CHUNK_BYTES = 256 * 1024;

/** detect takes every detection option of the table (src/detect/options.ts). */
const DETECTION = new DetectionOptionSet('all');

export const DETECT_HELP = `Usage: rcf-stream detect [options] [file]

Scores each record of an NDJSON (default) or CSV file, or of stdin when no file
(or "-") is given, and writes one NDJSON result per record.

${formatHelpSections([
  {
    title: 'Input',
    rows: [
      { option: '--format ndjson|csv', text: 'input format (CSV needs a header row)', default: 'ndjson' },
      ...DETECTION.rows('input'),
      { option: '--dead-letter FILE', text: 'append rejected records, with the reason, to FILE' },
    ],
  },
  { title: 'Model', rows: DETECTION.rows('model') },
  { title: 'Decision', rows: DETECTION.rows('decision') },
  {
    title: 'Output',
    rows: [
      { option: '--output FILE', text: 'write results to FILE instead of stdout' },
      ...DETECTION.rows(['explain']),
      { option: '--only-anomalies', text: 'write anomalous records only' },
      ...DETECTION.rows(['output-fields', 'shape']),
      { option: '--notify stderr|stdout', text: 'print "Anomaly detected: Time=..., Value=..., Score=..." per anomaly' },
      { option: '--quiet', text: 'no progress bar and no summary line on stderr' },
      { option: '--plot FILE.html', text: 'also write a self-contained HTML chart (values, scores, threshold, anomalies; per key with a selector)' },
      { option: '--stats-json FILE', text: 'write run statistics as JSON to FILE ("-": stderr)' },
      { option: '--workers N', text: 'scoring threads with --key-field, each key on one of them (same results as one thread)', default: 'cores, up to 8' },
      { option: '--no-worker', text: 'score on the main thread (slower; same results)' },
      {
        option: '--state FILE',
        text: 'resume the models saved in FILE (when it exists) and save them there at the end; exact: scores continue as if the runs were one (implies --no-worker)',
      },
      { option: '--state-every N', text: 'also save the models every N records' },
      { option: '-h, --help', text: 'show this help' },
    ],
  },
])}
Bad lines and records (malformed JSON, missing or non-numeric fields, NaN/Infinity,
lines over 1 MiB, invalid UTF-8, CSV rows with the wrong column count) are reported
on stderr with their line number, counted, and skipped. Exit status: 0 when the
input was read to the end, 1 when it could not be read or written, 2 for bad options,
130 when stopped by Ctrl-C (SIGINT) or SIGTERM (what was read is still scored and
written).
`;

const DETECT_OPTIONS = {
  format: { type: 'string' },
  'dead-letter': { type: 'string' },
  ...DETECTION.parseOptions,
  output: { type: 'string', short: 'o' },
  'only-anomalies': { type: 'boolean' },
  notify: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  'stats-json': { type: 'string' },
  plot: { type: 'string' },
  'no-worker': { type: 'boolean' },
  workers: { type: 'string' },
  state: { type: 'string' },
  'state-every': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface DetectConfig extends DetectionSettings {
  /** A file path; undefined or '-' for stdin. */
  input: string | undefined;
  format: InputFormat;
  mapping: FieldMapping;
  forest: ForestOptions;
  threshold: ThresholdStrategy;
  maxKeys: number;
  explain: boolean;
  onlyAnomalies: boolean;
  /** Only these output fields, in this order; undefined: input fields plus results. */
  outputFields: string[] | undefined;
  notify: 'stderr' | 'stdout' | undefined;
  output: string | undefined;
  deadLetter: string | undefined;
  quiet: boolean;
  statsJson: string | undefined;
  /** Write an HTML chart of the run here (src/report/detect-plot.ts). */
  plot?: string | undefined;
  maxLineBytes: number;
  /** Score on a worker thread (when the compiled worker module exists), overlapping parsing and scoring. */
  worker: boolean;
  /** Worker threads for keyed models (each key on one); 1 for one model. */
  workers?: number;
  /** Models are resumed from and saved to this file (src/service/models.ts format). */
  state?: string | undefined;
  /** Save the models every this many records too. */
  stateEvery?: number | undefined;
}

/** Reads detect's argv; throws UsageError. Returns undefined for --help. */
export function parseDetectArgs(argv: string[]): DetectConfig | undefined {
  const { values, positionals } = parseCommandArgs(argv, DETECT_OPTIONS, 1);
  if (values.help === true) return undefined;

  const format = choiceOption(values, 'format', ['ndjson', 'csv'] as const) ?? 'ndjson';
  let settings: DetectionSettings;
  try {
    settings = readDetectionSettings(DETECTION.tableValues(values));
  } catch (error) {
    if (error instanceof OptionError) throw new UsageError(DETECTION.describe(error));
    throw error;
  }
  const mapping = settings.mapping;
  if (values['state-every'] !== undefined && values.state === undefined) throw new UsageError('--state-every needs --state FILE (where the models are saved)');
  return {
    input: positionals[0],
    format,
    ...settings,
    onlyAnomalies: values['only-anomalies'] === true,
    notify: choiceOption(values, 'notify', ['stderr', 'stdout'] as const),
    output: stringOption(values, 'output'),
    deadLetter: stringOption(values, 'dead-letter'),
    quiet: values.quiet === true,
    statsJson: stringOption(values, 'stats-json'),
    plot: stringOption(values, 'plot'),
    maxLineBytes: DEFAULT_MAX_LINE_BYTES,
    worker: values['no-worker'] !== true && stringOption(values, 'state') === undefined,
    workers: workersOption(values, mapping.keyField !== undefined),
    state: stringOption(values, 'state'),
    stateEvery: integerOption(values, 'state-every', 1, Number.MAX_SAFE_INTEGER),
  };
}

/** --workers, or the machine's cores (at most 8) for keyed models; 1 for one model. */
function workersOption(values: Parameters<typeof integerOption>[0], keyed: boolean): number {
  const n = integerOption(values, 'workers', 1, 64);
  if (n !== undefined && n > 1 && !keyed) throw new UsageError('--workers above 1 needs --key-field: one model is scored in order on one thread');
  if (n !== undefined && n > 1 && values['no-worker'] === true) throw new UsageError('--workers and --no-worker cannot be combined');
  return n ?? (keyed ? Math.min(8, Math.max(1, availableParallelism())) : 1);
}

export interface DetectStats {
  /** Records scored. */
  records: number;
  anomalies: number;
  /** Lines or records set aside, and why. */
  badRecords: number;
  badRecordsByKind: Record<string, number>;
  /** Lines read, counting empty and bad ones. */
  lines: number;
  bytesRead: number;
  seconds: number;
  recordsPerSecond: number;
  /** Models held at the end, and models dropped for --max-keys. */
  models: number;
  evictions: number;
  /** The reader of the output went away before the end (e.g. `| head`). */
  outputClosed: boolean;
  /** Stopped by Ctrl-C (SIGINT) or SIGTERM before the end of the input. */
  interrupted: boolean;
  engine: string;
  threshold: string;
}

/** Thrown for inputs or outputs that cannot be used; exit code 1. */
class RunError extends RcfStreamError {
  override readonly name = 'RunError';
  readonly code = 'UNUSABLE_FILE';
}

function describeFsError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'not a directory',
  };
  return (e.code !== undefined && reasons[e.code]) || e.message;
}

async function openInput(path: string | undefined, io: CliIo): Promise<{ source: Readable; totalBytes: number | undefined }> {
  if (path === undefined || path === '-') return { source: io.stdin, totalBytes: undefined };
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    const handle = await open(path, 'r');
    return { source: handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES }), totalBytes: info.isFile() ? info.size : undefined };
  } catch (error) {
    throw new RunError(`cannot read ${JSON.stringify(path)}: ${describeFsError(error)}`);
  }
}

/** Throws RunError unless `path` can be written (an existing file, or a new one in a writable directory). */
async function checkWritable(path: string, what: string): Promise<void> {
  try {
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (info?.isDirectory() === true) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    await access(info !== undefined ? path : dirname(resolve(path)), fsConstants.W_OK);
  } catch (error) {
    throw new RunError(`cannot write ${what} ${JSON.stringify(path)}: ${describeFsError(error)}`);
  }
}

/** Whether two paths name one existing file (opening the output truncates it). */
async function sameFile(a: string | undefined, b: string | undefined): Promise<boolean> {
  if (a === undefined || b === undefined || a === '-' || b === '-') return false;
  try {
    const [x, y] = await Promise.all([stat(a), stat(b)]);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

export interface DetectResult {
  exitCode: number;
  stats: DetectStats;
}

/** What stopped the run early, and how it is reported. */
type Failure = { kind: 'usage' | 'scoring' | 'output' | 'dead letters' | 'state'; error: Error };

/**
 * The bad-record lines on stderr: the first BAD_LINES_SHOWN set aside while reading and
 * parsing, then a hint; records whose output could not be made are always shown.
 */
class BadRecordReport implements Sink {
  readonly name = 'bad-record report';
  shown = 0;
  constructor(
    readonly stderr: NodeJS.WritableStream,
    readonly progress: ProgressBar,
    readonly deadLetterFile: boolean,
  ) {}

  async deliver(batch: ScoredBatch): Promise<void> {
    for (const { letter, scored } of batch.deadLetters) {
      const n = ++this.shown;
      if (scored === undefined && n > BAD_LINES_SHOWN) continue;
      this.progress.clear();
      this.stderr.write(`rcf-stream detect: line ${letter.line}: ${letter.reason}\n`);
      if (scored === undefined && n === BAD_LINES_SHOWN) {
        this.stderr.write(`rcf-stream detect: further bad lines are counted, not shown${this.deadLetterFile ? ' (all are in the --dead-letter file)' : ' (--dead-letter FILE keeps them all)'}\n`);
      }
    }
  }

  async close(): Promise<void> {}
}

/** Sums up delivered batches for the summary, the stats and the progress line. */
class DetectTally implements Sink {
  readonly name = 'stats';
  readonly badByKind = new Map<string, number>();
  constructor(
    readonly stats: DetectStats,
    readonly after: () => void,
  ) {}

  async deliver(batch: ScoredBatch): Promise<void> {
    const s = this.stats;
    // Records scored but set aside when their output was made count as bad, not as scored.
    let unwritten = 0;
    let unwrittenAnomalies = 0;
    for (const { letter, scored } of batch.deadLetters) {
      const kind = letter.kind ?? letter.reason;
      this.badByKind.set(kind, (this.badByKind.get(kind) ?? 0) + 1);
      if (scored !== undefined) {
        unwritten++;
        if (scored.anomaly) unwrittenAnomalies++;
      }
    }
    s.records += batch.scored - unwritten;
    s.anomalies += batch.anomalies - unwrittenAnomalies;
    s.badRecords += batch.deadLetters.length;
    this.after();
  }

  async close(): Promise<void> {}
}

/** The models: resumed from --state (on this thread), on worker threads, or on this thread. */
async function openModels(config: DetectConfig, spec: DetectorSpec): Promise<ScopedModels> {
  if (config.state !== undefined) {
    const resumed = await resumeModels(config);
    const models = new ScopedModels('shard', spec, resumed !== undefined ? new Map([[LINE_PARTITION, resumed]]) : undefined);
    await models.prepare(LINE_PARTITION);
    return models;
  }
  if (config.worker && ModelWorkerPool.available) {
    // Keyed models over several workers: each key on one worker (same results as one thread).
    const pool = await ModelWorkerPool.start(spec, config.workers ?? 1, spec.keyed ? 'keys' : 'names');
    return new ScopedModels('shard', spec, undefined, pool);
  }
  const models = new ScopedModels('shard', spec);
  await models.prepare(LINE_PARTITION);
  return models;
}

/** The CSV parser of the header line; UsageError when the header does not fit the options. */
function csvParser(config: DetectConfig, header: { text: string; line: number }): RecordParser {
  try {
    return createRecordParser('csv', config.mapping, header.text);
  } catch (error) {
    if (error instanceof OptionError) throw new UsageError(`CSV header (line ${header.line}): ${flagOf(error.option)}: ${error.detail}`);
    throw new UsageError(`CSV header (line ${header.line}): ${(error as Error).message}`);
  }
}

/**
 * Runs the pipeline: LineSource -> BatchProcessor -> sinks -> commit (--state). Errors are
 * reported on io.stderr; the exit code says how it ended.
 */
export async function runDetect(config: DetectConfig, io: CliIo = processIo()): Promise<DetectResult> {
  const stderr = io.stderr;
  const progress = new ProgressBar(stderr, stderr.isTTY === true && !config.quiet);
  const stats: DetectStats = {
    records: 0,
    anomalies: 0,
    badRecords: 0,
    badRecordsByKind: {},
    lines: 0,
    bytesRead: 0,
    seconds: 0,
    recordsPerSecond: 0,
    models: 0,
    evictions: 0,
    outputClosed: false,
    interrupted: false,
    engine: config.forest.engine ?? 'wasm',
    threshold: describeStrategy(config.threshold),
  };
  const fail = (message: string, code: number): DetectResult => {
    progress.clear();
    stderr.write(`rcf-stream detect: ${message}\n`);
    return { exitCode: code, stats };
  };

  const keyed = config.mapping.keyField !== undefined;
  let input: Awaited<ReturnType<typeof openInput>>;
  let out: OutputSink | undefined;
  let deadLetters: DeadLetterFileSink | undefined;
  let models: ScopedModels;
  try {
    input = await openInput(config.input, io);
  } catch (error) {
    return fail((error as Error).message, EXIT_FAILURE);
  }
  try {
    if (await sameFile(config.input, config.output)) throw new UsageError('--output names the input file, which would destroy it');
    try {
      out = await OutputSink.open(config.output, io.stdout);
    } catch (error) {
      throw new RunError(`cannot write ${JSON.stringify(config.output)}: ${describeFsError(error)}`);
    }
    if (config.deadLetter !== undefined) deadLetters = await openDeadLetters(config.deadLetter);
    // Found now rather than after the whole input was scored.
    if (config.state !== undefined) await checkWritable(config.state, 'the state file (--state)');
    if (config.statsJson !== undefined && config.statsJson !== '-') await checkWritable(config.statsJson, 'the stats file (--stats-json)');
    if (config.plot !== undefined) await checkWritable(config.plot, 'the chart (--plot)');
    models = await openModels(config, { forest: config.forest, threshold: config.threshold, attribution: config.explain, keyed, maxKeys: config.maxKeys });
  } catch (error) {
    input.source.destroy();
    await out?.finish();
    await deadLetters?.close().catch(() => undefined);
    return fail((error as Error).message, error instanceof RunError ? EXIT_FAILURE : EXIT_USAGE);
  }

  // At most one detector call per batch: batches on workers are scored concurrently by several
  // processors, so each must reach the models in one call, in the order it was handed over.
  const source = new LineSource(input.source, { maxLineBytes: config.maxLineBytes, header: config.format === 'csv', batchRecords: CHUNK_RECORDS });
  const started = performance.now();
  const showProgress = (): void => {
    if (!progress.enabled) return;
    progress.update({ bytes: source.bytesRead, totalBytes: input.totalBytes, records: stats.records, anomalies: stats.anomalies, seconds: (performance.now() - started) / 1000 });
  };

  // --- the sinks, in delivery order: bad-record report and dead letters, output, notifications, stats
  let warnedEviction = false;
  const tally = new DetectTally(stats, () => {
    if (models.evictions > 0 && !warnedEviction) {
      warnedEviction = true;
      progress.clear();
      stderr.write(`rcf-stream detect: more than ${formatCount(config.maxKeys)} keys; dropping least recently used models (see --max-keys)\n`);
    }
    showProgress();
  });
  const output = new StreamOutputSink(out);
  // Notifications to stdout share the output's stream when results go there too, keeping their order.
  const toStdout = config.output === undefined || config.output === '-';
  const notifyOut = config.notify === undefined ? undefined : config.notify === 'stderr' ? new OutputSink(stderr, false) : toStdout ? out : new OutputSink(io.stdout, false);
  const notifications = notifyOut && new TextNotificationSink(notifyOut, () => progress.clear());
  const sinks: Sink[] = [new BadRecordReport(stderr, progress, deadLetters !== undefined), ...(deadLetters ? [deadLetters] : []), output, ...(notifications ? [notifications] : []), tally];
  const failedSink = (sink: Sink | undefined): Failure['kind'] => (sink === deadLetters ? 'dead letters' : 'output');

  // --- the record stage: one processor on this thread, or a few in turn with the models on workers
  const plot = config.plot === undefined ? undefined : new DetectPlotCollector({ fields: config.mapping.fields, keyed, title: `rcf-stream detect ${config.input ?? 'stdin'}` });
  const remote = models.pool !== undefined;
  const newProcessors = (parser?: RecordParser): BatchProcessor[] =>
    Array.from(
      { length: remote ? MAX_IN_FLIGHT : 1 },
      () =>
        new BatchProcessor({
          settings: config,
          models,
          emit: config.onlyAnomalies ? 'anomalies' : 'all',
          notifications: config.notify !== undefined ? {} : undefined,
          observer: plot && { batchScored: (e) => plot.add(e.batch, e.batch) },
          parser,
          output: 'lines',
        }),
    );
  // A CSV input's processors are made again with its header's parser; lines before the header are all unreadable ones.
  let processors = newProcessors();
  let turn = 0;

  let failure: Failure | undefined;
  /** Batches scored or being scored, not yet delivered, in order. */
  const pending: Promise<void>[] = [];
  let deliveryTail: Promise<void> = Promise.resolve();
  let sinceSave = 0;
  const deliver = (scoring: Promise<ScoredBatch>): Promise<void> => {
    // Not awaited below once an earlier batch failed: its rejection is then no one's.
    scoring.catch(() => undefined);
    deliveryTail = deliveryTail.then(async () => {
      if (failure !== undefined) return;
      let scored: ScoredBatch;
      try {
        scored = await scoring;
      } catch (error) {
        failure ??= { kind: 'scoring', error: error as Error };
        return;
      }
      let sink: Sink | undefined;
      try {
        for (sink of sinks) await sink.deliver(scored);
      } catch (error) {
        failure ??= { kind: failedSink(sink), error: error as Error };
        return;
      }
      sinceSave += scored.scored;
    });
    return deliveryTail;
  };

  // Ctrl-C stops reading; what was read is still scored, written and summed up.
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    void source.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let readError: Error | undefined;
  try {
    for await (const batch of source.start()) {
      if (batch.header !== undefined) processors = newProcessors(csvParser(config, batch.header));
      if (batch.records.length === 0) continue;
      const processor = processors[turn++ % processors.length]!;
      let scoring: Promise<ScoredBatch>;
      if (remote) scoring = processor.processRemote(LINE_PARTITION, batch.records);
      else {
        try {
          scoring = Promise.resolve(processor.process(LINE_PARTITION, batch.records));
        } catch (error) {
          scoring = Promise.reject(error as Error);
        }
      }
      pending.push(deliver(scoring));
      // Commit: with --state (models on this thread) each batch is delivered before the models are saved.
      if (config.state !== undefined) {
        await pending.shift();
        if (config.stateEvery !== undefined && sinceSave >= config.stateEvery && failure === undefined) {
          sinceSave = 0;
          try {
            saveModels(config.state, config, models);
          } catch (error) {
            failure = { kind: 'state', error: error as Error };
          }
        }
      }
      // A processor takes its next batch once its last one was delivered.
      while (pending.length >= processors.length + (remote ? 0 : 1)) await pending.shift();
      if (failure !== undefined || output.stopped) break;
    }
  } catch (error) {
    if (error instanceof UsageError) failure ??= { kind: 'usage', error };
    else readError = error as Error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Let batches already handed over finish (or fail) before the models go away.
    await deliveryTail;
    input.source.destroy();
  }

  let exitCode = EXIT_OK;
  const report = (message: string, code: number): void => {
    progress.clear();
    if (exitCode === EXIT_OK) exitCode = code;
    stderr.write(`rcf-stream detect: ${message}\n`);
  };
  if (failure?.kind === 'usage') report(failure.error.message, EXIT_USAGE);
  else if (failure?.kind === 'scoring') report(`scoring failed: ${failure.error.message}`, EXIT_FAILURE);
  else if (failure?.kind === 'state') report(`cannot save the models to ${JSON.stringify(config.state)}: ${failure.error.message}`, EXIT_FAILURE);
  else if (readError !== undefined && !interrupted) {
    const where = config.input === undefined || config.input === '-' ? 'stdin' : JSON.stringify(config.input);
    report(`error reading ${where}: ${readError.message}`, EXIT_FAILURE);
  }

  await out.finish();
  if (notifyOut !== undefined && notifyOut !== out) await notifyOut.finish();
  if (out.error !== undefined || failure?.kind === 'output') report(`cannot write output: ${(out.error ?? failure!.error).message}`, EXIT_FAILURE);
  if (deadLetters !== undefined) {
    try {
      if (failure?.kind === 'dead letters') throw failure.error;
      await deadLetters.close();
    } catch (error) {
      if (exitCode === EXIT_OK) exitCode = EXIT_FAILURE;
      stderr.write(`rcf-stream detect: cannot write dead letters: ${(error as Error).message}\n`);
    }
  }

  stats.seconds = (performance.now() - started) / 1000;
  stats.recordsPerSecond = stats.seconds > 0 ? stats.records / stats.seconds : 0;
  stats.lines = source.linesRead;
  stats.bytesRead = source.bytesRead;
  stats.badRecordsByKind = Object.fromEntries(tally.badByKind);
  stats.models = models.size;
  stats.evictions = models.evictions;
  stats.outputClosed = out.closed;
  stats.interrupted = interrupted;
  if (interrupted && exitCode === EXIT_OK) exitCode = EXIT_INTERRUPTED;
  // The models have learnt every record that was read (also after Ctrl-C); not after a scoring failure.
  if (config.state !== undefined && failure?.kind !== 'scoring' && failure?.kind !== 'state') {
    try {
      saveModels(config.state, config, models);
    } catch (error) {
      if (exitCode === EXIT_OK || exitCode === EXIT_INTERRUPTED) exitCode = EXIT_FAILURE;
      stderr.write(`rcf-stream detect: cannot save the models to ${JSON.stringify(config.state)}: ${(error as Error).message}\n`);
    }
  }
  await models.pool?.close();
  models.dispose();
  if (plot !== undefined) {
    try {
      await plot.write(config.plot!);
    } catch (error) {
      if (exitCode === EXIT_OK || exitCode === EXIT_INTERRUPTED) exitCode = EXIT_FAILURE;
      stderr.write(`rcf-stream detect: cannot write the plot to ${JSON.stringify(config.plot)}: ${describeFsError(error)}\n`);
    }
  }

  progress.clear();
  if (!config.quiet) stderr.write(`${formatSummary(stats, keyed)}\n`);
  // Nothing scored although lines came: most likely the options do not fit the input.
  if (stats.records === 0 && stats.badRecords > 0 && exitCode === EXIT_OK) {
    exitCode = EXIT_FAILURE;
    stderr.write(`rcf-stream detect: no record could be scored: ${diagnose(config, stats)}\n`);
  }
  if (config.statsJson !== undefined) {
    const json = `${JSON.stringify(stats)}\n`;
    if (config.statsJson === '-') stderr.write(json);
    else {
      try {
        await writeFile(config.statsJson, json);
      } catch (error) {
        stderr.write(`rcf-stream detect: cannot write stats to ${JSON.stringify(config.statsJson)}: ${describeFsError(error)}\n`);
        if (exitCode === EXIT_OK) exitCode = EXIT_FAILURE;
      }
    }
  }
  return { exitCode, stats };
}

/** An appending dead-letter file; RunError when it cannot be opened. */
async function openDeadLetters(path: string): Promise<DeadLetterFileSink> {
  try {
    const stream = createWriteStream(path, { flags: 'a' });
    await Promise.race([once(stream, 'open'), once(stream, 'error').then(([e]) => Promise.reject(e as Error))]);
    return new DeadLetterFileSink(new DeadLetterWriter(stream), stream);
  } catch (error) {
    throw new RunError(`cannot write dead letters to ${JSON.stringify(path)}: ${describeFsError(error)}`);
  }
}

/** Bad lines printed one by one; beyond it they are counted (and dead-lettered). */
const BAD_LINES_SHOWN = 20;

/** What probably went wrong when every line was bad. */
function diagnose(config: DetectConfig, s: DetectStats): string {
  const [kind] = Object.entries(s.badRecordsByKind).sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
  const csvFile = /\.csv$/i.test(config.input ?? '');
  if (kind === 'malformed JSON' && config.format === 'ndjson') return csvFile ? 'the input looks like CSV: add --format csv' : 'the lines are not JSON (for CSV input, add --format csv)';
  if (kind === 'missing field') {
    const m = config.mapping;
    const names = [...m.fields, ...(m.timeField !== undefined ? [m.timeField] : []), ...(m.keyField !== undefined ? [m.keyField] : [])];
    return `no line has all of the fields ${names.map((n) => JSON.stringify(n)).join(', ')}: check --fields${m.timeField !== undefined ? ', --time-field' : ''}${m.keyField !== undefined ? ', --key-field' : ''}`;
  }
  if (kind === 'not a number') return `the fields ${config.mapping.fields.map((n) => JSON.stringify(n)).join(', ')} are not numbers: check --fields`;
  return `every line was rejected (mostly ${JSON.stringify(kind)}); see the reasons above`;
}

/** The final line on stderr. */
export function formatSummary(s: DetectStats, keyed: boolean): string {
  const parts = [
    `${formatCount(s.records)} records in ${s.seconds.toFixed(2)} s (${formatCount(s.recordsPerSecond)} records/s)`,
    `${formatCount(s.anomalies)} anomalies`,
  ];
  const kinds = Object.entries(s.badRecordsByKind)
    .map(([kind, n]) => `${kind}: ${formatCount(n)}`)
    .join(', ');
  parts.push(`${formatCount(s.badRecords)} bad records${kinds.length > 0 ? ` (${kinds})` : ''}`);
  if (keyed) parts.push(`${formatCount(s.models)} keys (${formatCount(s.evictions)} evicted)`);
  let line = `rcf-stream detect: ${parts.join(', ')}`;
  if (s.outputClosed) line += '; output closed early';
  if (s.interrupted) line += '; interrupted';
  return line;
}

export async function runDetectCommand(argv: string[], io: CliIo = processIo()): Promise<number> {
  const config = await readCommandSettings('detect', DETECT_HELP, io, () => parseDetectArgs(argv));
  if (typeof config === 'number') return config;
  return (await runDetect(config, io)).exitCode;
}

/** The models saved in config.state when that file exists; undefined when it does not. */
async function resumeModels(config: DetectConfig): Promise<RecordDetector | undefined> {
  const path = config.state!;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RunError(`cannot read the state file ${JSON.stringify(path)}: ${describeFsError(error)}`);
  }
  try {
    return await decodeModels(bytes, { detect: config, grader: await graderFactory(config.threshold) });
  } catch (error) {
    if (error instanceof ModelMismatchError) throw new UsageError(`--state ${JSON.stringify(path)}: ${error.mismatch} Run with the same settings, or use another --state file.`);
    throw new RunError(`the state file ${JSON.stringify(path)} is unusable: ${(error as Error).message}`);
  }
}

/** The commit: every model written to config.state atomically and durably (fsync'd temp file, rename). */
function saveModels(path: string, config: DetectConfig, models: ScopedModels): void {
  writeFileAtomicSync(path, encodeModels(models.detectorOf(LINE_PARTITION)!, modelFingerprint(config)));
}
