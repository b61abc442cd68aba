/**
 * `rcf-stream detect`: NDJSON or CSV records in, one NDJSON result per record out.
 *
 *   source (file | stdin) -> line reader -> record parser -> detector -> sinks
 *                                 |              |                       (output, notifications,
 *                                 +--- bad lines and records ---> stderr    progress, summary)
 *                                                                 + dead-letter file
 *
 * Records are scored in batches of up to BATCH_RECORDS: a batch is flushed when full, and
 * also as soon as the input pauses (a setImmediate callback only runs once the line reader
 * waits for more bytes), so a slow live stream is not held back waiting for a full batch.
 */
import { readFileSync } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { access, open, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { resolveOptions, LIMITS, type ForestOptions } from '../forest/options.js';
import { DeadLetterWriter } from '../io/dead-letter.js';
import { LineReader, DEFAULT_MAX_LINE_BYTES } from '../io/line-reader.js';
import {
  createRecordParser,
  validateFieldMapping,
  MAX_FIELDS,
  type FieldMapping,
  type InputFormat,
  type RecordParser,
} from '../io/record-parser.js';
import { DetectionBatch, DEFAULT_MAX_KEYS, type RecordDetector } from '../detect/detector.js';
import { createRecordDetector, InlineDetectorHost, PartitionedDetectorHost, WorkerDetectorHost, type BatchResults, type DetectorHost, type DetectorSpec } from '../detect/detector-host.js';
import { decodeModels, encodeModels, modelFingerprint, ModelMismatchError } from '../pipeline/models.js';
import { explain } from '../detect/explanation.js';
import { parseTimestamp } from '../detect/timestamp.js';
import type { DetectionSettings } from '../detect/settings.js';
import { DetectionOptionSet, flagOf, readDetectionSettings } from '../detect/options.js';
import { formatHelpSections } from '../util/help-text.js';
import { OptionError, describeOptionError } from '../util/option-error.js';
import {
  describeStrategy,
  graderFactory,
  isAdaptive,
  parseThresholdStrategy,
  type ThresholdStrategy,
} from '../detect/strategy.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  EXIT_INTERRUPTED,
  UsageError,
  choiceOption,
  formatCount,
  integerOption,
  listOption,
  numberOption,
  parseCommandArgs,
  processIo,
  stringOption,
  type CliIo,
  readCommandSettings,
} from './args.js';
import { ByteTextBuilder, OutputSink, formatNotification } from '../io/output.js';
import { FormatError, RecordFormatter, guardFormat } from '../pipeline/formatter.js';
import { writeFileAtomicSync } from '../pipeline/atomic-write.js';
import { ProgressBar } from './progress.js';
import { DetectPlotCollector } from '../report/detect-plot.js';
import { RcfStreamError } from '../util/errors.js';

/** Records scored per detector call: large enough to amortise calls, small enough for latency and memory. */
const BATCH_RECORDS = 2048;
/** Batches being scored while the next one fills. */
const MAX_IN_FLIGHT = 2;
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

/** A batch being filled, scored or written, with what its output lines need besides the values. */
interface Slot {
  batch: DetectionBatch;
  /** The input line (NDJSON only: results are spliced into it). */
  texts: (string | undefined)[];
  sources: Record<string, unknown>[];
  times: unknown[];
  lineNumbers: Float64Array;
}

function newSlot(dimensions: number, attributionLength: number): Slot {
  return {
    batch: new DetectionBatch(BATCH_RECORDS, dimensions, attributionLength),
    texts: new Array<string | undefined>(BATCH_RECORDS),
    sources: new Array<Record<string, unknown>>(BATCH_RECORDS),
    times: new Array<unknown>(BATCH_RECORDS),
    lineNumbers: new Float64Array(BATCH_RECORDS),
  };
}

/** Runs the pipeline. Errors are reported on io.stderr; the exit code says how it ended. */
export async function runDetect(config: DetectConfig, io: CliIo = processIo()): Promise<DetectResult> {
  const stderr = io.stderr;
  const progress = new ProgressBar(stderr, stderr.isTTY === true && !config.quiet);
  const badByKind = new Map<string, number>();
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
  let sink: OutputSink | undefined;
  let deadLetters: DeadLetterWriter | undefined;
  let host: DetectorHost;
  try {
    input = await openInput(config.input, io);
  } catch (error) {
    return fail((error as Error).message, EXIT_FAILURE);
  }
  try {
    if (await sameFile(config.input, config.output)) throw new UsageError('--output names the input file, which would destroy it');
    try {
      sink = await OutputSink.open(config.output, io.stdout);
    } catch (error) {
      throw new RunError(`cannot write ${JSON.stringify(config.output)}: ${describeFsError(error)}`);
    }
    if (config.deadLetter !== undefined) {
      try {
        deadLetters = await DeadLetterWriter.open(config.deadLetter);
      } catch (error) {
        throw new RunError(`cannot write dead letters to ${JSON.stringify(config.deadLetter)}: ${describeFsError(error)}`);
      }
    }
    // Found now rather than after the whole input was scored.
    if (config.state !== undefined) await checkWritable(config.state, 'the state file (--state)');
    if (config.statsJson !== undefined && config.statsJson !== '-') await checkWritable(config.statsJson, 'the stats file (--stats-json)');
    if (config.plot !== undefined) await checkWritable(config.plot, 'the chart (--plot)');
    const spec = { forest: config.forest, threshold: config.threshold, attribution: config.explain, keyed, maxKeys: config.maxKeys };
    if (config.state !== undefined) host = new InlineDetectorHost(await resumeModels(config, spec));
    else if (config.worker && WorkerDetectorHost.available) {
      host = keyed && (config.workers ?? 1) > 1 ? await PartitionedDetectorHost.start(spec, config.workers!) : await WorkerDetectorHost.start(spec);
    } else host = await InlineDetectorHost.start(spec);
  } catch (error) {
    input.source.destroy();
    await sink?.finish();
    await deadLetters?.close().catch(() => undefined);
    return fail((error as Error).message, error instanceof RunError ? EXIT_FAILURE : EXIT_USAGE);
  }

  const b = config.mapping.fields.length;
  const k = config.forest.shingleSize ?? 1;
  const attributionLength = config.explain ? b * k : 0;
  const formatter = new RecordFormatter(config);
  const reportUnformattable = (slot: Slot, i: number, error: FormatError): void => {
    stats.badRecords++;
    badByKind.set(error.kind, (badByKind.get(error.kind) ?? 0) + 1);
    const line = slot.lineNumbers[i]!;
    progress.clear();
    stderr.write(`rcf-stream detect: line ${line}: ${error.message}\n`);
    deadLetters?.write({ line, reason: error.message, kind: error.kind, input: slot.texts[i] ?? guardFormat('input', () => JSON.stringify(slot.sources[i])) });
  };
  // Notifications to stdout share the sink when results go there too, keeping their order.
  const toStdout = config.output === undefined || config.output === '-';
  const notifySink = config.notify !== 'stdout' ? undefined : toStdout ? sink : new OutputSink(io.stdout, false);
  const timeField = config.mapping.timeField;
  const ndjson = config.format === 'ndjson';
  const reader = new LineReader(input.source, { maxLineBytes: config.maxLineBytes });
  const started = performance.now();
  let failure: Error | undefined;
  let warnedEviction = false;

  const showProgress = (): void => {
    if (!progress.enabled) return;
    progress.update({
      bytes: reader.bytesRead,
      totalBytes: input.totalBytes,
      records: stats.records,
      anomalies: stats.anomalies,
      seconds: (performance.now() - started) / 1000,
    });
  };

  // Output lines are assembled as bytes (see ByteTextBuilder), one buffer per batch.
  const out = new ByteTextBuilder();
  /** Writes a scored batch's output lines and notifications. */
  const plot = config.plot === undefined ? undefined : new DetectPlotCollector({ fields: config.mapping.fields, keyed, title: `rcf-stream detect ${config.input ?? 'stdin'}` });
  const emit = (slot: Slot, results: BatchResults): void => {
    plot?.add(slot.batch, results);
    const n = slot.batch.count;
    const values = slot.batch.values;
    let notes = '';
    let unformattable = 0;
    for (let i = 0; i < n; i++) {
      const anomaly = results.anomaly[i] === 1;
      // One record that cannot be written (nested too deeply, ...) is a dead letter, not the end of the run.
      let note: string | undefined;
      try {
        if (anomaly && config.notify !== undefined) {
          const time = timeField === undefined ? slot.lineNumbers[i] : slot.times[i];
          note = guardFormat('notification', () => formatNotification(time, values, i * b, b, results.score[i]!));
        }
        if (!config.onlyAnomalies || anomaly) formatter.appendLine(out, slot.texts[i], slot.sources[i]!, results, i);
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        unformattable++;
        try {
          reportUnformattable(slot, i, error);
        } catch {
          // The input itself cannot be shown either: reported without it.
          deadLetters?.write({ line: slot.lineNumbers[i]!, reason: error.message, kind: error.kind });
        }
        continue;
      }
      if (anomaly) stats.anomalies++;
      if (note !== undefined) notes += `${note}\n`;
    }
    stats.records += n - unformattable;
    sink!.write(out.take());
    if (notes.length > 0) {
      if (notifySink !== undefined) notifySink.write(notes);
      else {
        progress.clear();
        stderr.write(notes);
      }
    }
    if (host.evictions > 0 && !warnedEviction) {
      warnedEviction = true;
      progress.clear();
      stderr.write(`rcf-stream detect: more than ${formatCount(config.maxKeys)} keys; dropping least recently used models (see --max-keys)\n`);
    }
    showProgress();
  };

  // Up to MAX_IN_FLIGHT batches are being scored while the next one fills.
  const free: Slot[] = [];
  for (let i = 0; i <= MAX_IN_FLIGHT; i++) free.push(newSlot(b, attributionLength));
  const inFlight: { done: Promise<void>; settled: boolean }[] = [];
  let current: Slot | undefined = free.pop();

  // With --state the host is inline: a submitted batch is already learnt when submit returns.
  let sinceSave = 0;
  const dispatch = (): void => {
    const slot = current;
    if (slot === undefined || slot.batch.count === 0 || failure !== undefined) return;
    sinceSave += slot.batch.count;
    const entry = { done: Promise.resolve(), settled: false };
    entry.done = host
      .submit(slot.batch)
      .then(
        (results) => emit(slot, results),
        (error: unknown) => {
          failure ??= error as Error;
        },
      )
      .catch((error: unknown) => {
        failure ??= error as Error;
      })
      .finally(() => {
        slot.batch.count = 0;
        free.push(slot);
        entry.settled = true;
      });
    while (inFlight.length > 0 && inFlight[0]!.settled) inFlight.shift();
    inFlight.push(entry);
    current = free.pop();
    if (config.state !== undefined && config.stateEvery !== undefined && sinceSave >= config.stateEvery && failure === undefined) {
      sinceSave = 0;
      saveModels(config.state, config, host as InlineDetectorHost);
    }
  };

  /** Waits until a slot is free to fill. */
  const acquire = async (): Promise<Slot> => {
    while (free.length === 0) await inFlight.shift()!.done;
    return free.pop()!;
  };

  let idleFlushPending = false;
  let idleFlush: NodeJS.Immediate | undefined;
  const scheduleIdleFlush = (): void => {
    if (idleFlushPending) return;
    idleFlushPending = true;
    idleFlush = setImmediate(() => {
      idleFlushPending = false;
      dispatch();
    });
  };

  const reportBad = async (line: number, reason: string, kind: string, raw: string | Uint8Array | undefined): Promise<void> => {
    stats.badRecords++;
    badByKind.set(kind, (badByKind.get(kind) ?? 0) + 1);
    if (stats.badRecords <= BAD_LINES_SHOWN) {
      progress.clear();
      stderr.write(`rcf-stream detect: line ${line}: ${reason}\n`);
      if (stats.badRecords === BAD_LINES_SHOWN) stderr.write(`rcf-stream detect: further bad lines are counted, not shown${config.deadLetter !== undefined ? ' (all are in the --dead-letter file)' : ' (--dead-letter FILE keeps them all)'}\n`);
    }
    if (deadLetters !== undefined && !deadLetters.write({ line, reason, kind, input: raw })) await deadLetters.drain();
  };

  let parser: RecordParser | undefined = ndjson ? createRecordParser('ndjson', config.mapping) : undefined;
  let exitCode = EXIT_OK;
  // Ctrl-C stops reading; what was read is still scored, written and summed up.
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    input.source.destroy();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Lines come a chunk at a time, so the reader counts ahead of the line being handled: when
  // the loop stops inside a batch, the last line handled is the last line reached.
  let consuming = false;
  let lastLine = 0;
  try {
    reading: for await (const lines of reader.batches()) {
      consuming = true;
      for (const line of lines) {
        lastLine = line.lineNumber;
        if (line.error !== undefined) {
          const reason = line.error === 'line too long' ? `line too long (${line.byteLength} bytes; the limit is ${config.maxLineBytes})` : line.error;
          await reportBad(line.lineNumber, reason, line.error, line.raw);
          continue;
        }
        if (parser === undefined) {
          try {
            parser = createRecordParser('csv', config.mapping, line.text);
          } catch (error) {
            if (error instanceof OptionError) throw new UsageError(`CSV header (line ${line.lineNumber}): ${flagOf(error.option)}: ${error.detail}`);
            throw new UsageError(`CSV header (line ${line.lineNumber}): ${(error as Error).message}`);
          }
          continue;
        }
        current ??= await acquire();
        const slot = current;
        const i = slot.batch.count;
        const parsed = parser.parse(line.text, slot.batch.values, i * b);
        if (!parsed.ok) {
          await reportBad(line.lineNumber, parsed.reason, parsed.kind, line.text);
          continue;
        }
        slot.texts[i] = ndjson ? line.text : undefined;
        slot.sources[i] = parsed.source;
        slot.times[i] = parsed.time;
        slot.batch.time[i] = parseTimestamp(parsed.time);
        slot.lineNumbers[i] = line.lineNumber;
        if (keyed) slot.batch.keys[i] = parsed.key!;
        slot.batch.count = i + 1;
        if (i === 0) scheduleIdleFlush();
        else if (i + 1 === BATCH_RECORDS) dispatch();
        if (failure !== undefined) throw failure;
        if (sink.stopped) break reading;
        if (sink.needsDrain) await sink.drain();
      }
      consuming = false;
    }
    dispatch();
    for (const entry of inFlight.splice(0)) await entry.done;
    if (failure !== undefined) throw failure;
  } catch (error) {
    if (interrupted && error !== failure && !(error instanceof UsageError)) {
      // Destroying the input ends the reader with an error; the records read so far still count.
      dispatch();
      for (const entry of inFlight.splice(0)) await entry.done;
    }
    progress.clear();
    if (error instanceof UsageError) {
      exitCode = EXIT_USAGE;
      stderr.write(`rcf-stream detect: ${error.message}\n`);
    } else if (error === failure) {
      exitCode = EXIT_FAILURE;
      stderr.write(`rcf-stream detect: scoring failed: ${(error as Error).message}\n`);
    } else if (!interrupted) {
      exitCode = EXIT_FAILURE;
      const where = config.input === undefined || config.input === '-' ? 'stdin' : JSON.stringify(config.input);
      stderr.write(`rcf-stream detect: error reading ${where}: ${(error as Error).message}\n`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (idleFlush !== undefined) clearImmediate(idleFlush);
    input.source.destroy();
    // Let batches already handed over finish (or fail) before the host goes away.
    await Promise.allSettled(inFlight.map((entry) => entry.done));
  }

  await sink.finish();
  if (notifySink !== undefined && notifySink !== sink) await notifySink.finish();
  if (sink.error !== undefined && exitCode === EXIT_OK) {
    exitCode = EXIT_FAILURE;
    progress.clear();
    stderr.write(`rcf-stream detect: cannot write output: ${sink.error.message}\n`);
  }
  if (deadLetters !== undefined) {
    try {
      await deadLetters.close();
    } catch (error) {
      if (exitCode === EXIT_OK) exitCode = EXIT_FAILURE;
      stderr.write(`rcf-stream detect: cannot write dead letters: ${(error as Error).message}\n`);
    }
  }

  stats.seconds = (performance.now() - started) / 1000;
  stats.recordsPerSecond = stats.seconds > 0 ? stats.records / stats.seconds : 0;
  stats.lines = consuming ? lastLine : reader.lineNumber;
  stats.bytesRead = reader.bytesRead;
  stats.badRecordsByKind = Object.fromEntries(badByKind);
  stats.models = host.size;
  stats.evictions = host.evictions;
  stats.outputClosed = sink.closed;
  stats.interrupted = interrupted;
  if (interrupted && exitCode === EXIT_OK) exitCode = EXIT_INTERRUPTED;
  // The models have learnt every record that was read (also after Ctrl-C); not after a scoring failure.
  if (config.state !== undefined && failure === undefined) {
    try {
      saveModels(config.state, config, host as InlineDetectorHost);
    } catch (error) {
      if (exitCode === EXIT_OK || exitCode === EXIT_INTERRUPTED) exitCode = EXIT_FAILURE;
      stderr.write(`rcf-stream detect: cannot save the models to ${JSON.stringify(config.state)}: ${(error as Error).message}\n`);
    }
  }
  await host.close();
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

/** The models saved in config.state when that file exists, else new ones. */
async function resumeModels(config: DetectConfig, spec: DetectorSpec): Promise<RecordDetector> {
  const path = config.state!;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return createRecordDetector(spec);
    throw new RunError(`cannot read the state file ${JSON.stringify(path)}: ${describeFsError(error)}`);
  }
  try {
    return await decodeModels(bytes, { detect: config, grader: await graderFactory(config.threshold) });
  } catch (error) {
    if (error instanceof ModelMismatchError) throw new UsageError(`--state ${JSON.stringify(path)}: ${error.mismatch} Run with the same settings, or use another --state file.`);
    throw new RunError(`the state file ${JSON.stringify(path)} is unusable: ${(error as Error).message}`);
  }
}

/** Writes every model to config.state atomically and durably (fsync'd temp file, rename). */
function saveModels(path: string, config: DetectConfig, host: InlineDetectorHost): void {
  writeFileAtomicSync(path, encodeModels(host.detector, modelFingerprint(config)));
}
