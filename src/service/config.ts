/**
 * Configuration of `rcf-stream run`, merged from three places (later wins):
 *
 *   JSON file (--config FILE)  <  environment (RCF_*)  <  command-line flags
 *
 * Every flag `--some-option` can also be given as the environment variable
 * `RCF_SOME_OPTION` and as the JSON key `someOption`; the reference scenario's
 * property names (`inputStreamName`, `outputStreamName`, `snsTopicArn`,
 * `region`, `endpointUrl`) are accepted as aliases. Detection options are the
 * `detect` command's and are validated by its own parser, so both commands
 * accept and reject exactly the same values.
 *
 * Credentials never appear here: they come from the AWS SDK's provider chain.
 */
import { readFile } from 'node:fs/promises';
import type { AwsConfig, AwsEndpoints } from '../aws/clients.js';
import type { StartPosition } from '../aws/kinesis-source.js';
import { parseHttpAddress, type HttpAddress } from '../http/address.js';
import {
  UsageError,
  choiceOption,
  integerOption,
  numberOption,
  parseCommandArgs,
  stringOption,
  type Parsed,
} from '../cli/args.js';
import { parseDetectArgs, type DetectConfig } from '../cli/detect-command.js';

export interface StreamRef {
  streamName?: string;
  streamArn?: string;
}

export type CheckpointSpec =
  | { kind: 'file'; path: string }
  | { kind: 'dynamodb'; table: string; app: string }
  | { kind: 's3'; bucket: string; app: string; prefix?: string }
  | { kind: 'none' };

/** What the output record's partition key is. */
export type PartitionKeySpec =
  /** The record's --key-field value, else its record id (the default). */
  | { kind: 'key' }
  /** The record id `shardId:sequenceNumber[:subSequence]`. */
  | { kind: 'id' }
  /** The input record's own partition key. */
  | { kind: 'input' }
  /** The value of an input field (the record id when absent). */
  | { kind: 'field'; name: string };

export interface ServiceConfig {
  input: StreamRef;
  /** Undefined: output records go to stdout as NDJSON. */
  output: StreamRef | undefined;
  snsTopicArn: string | undefined;
  aws: AwsConfig;
  startPosition: StartPosition;
  checkpoint: CheckpointSpec;
  /** Save a checkpoint after this many records since the last one. */
  checkpointRecords: number;
  /** ... or after this long, whichever comes first. */
  checkpointIntervalMs: number;
  /** Ignore the models stored in the checkpoint (keep its positions). */
  resetModels: boolean;
  emit: 'anomalies' | 'all';
  outputPartitionKey: PartitionKeySpec;
  deadLetterFile: string | undefined;
  deadLetterStream: StreamRef | undefined;
  sns: { subject: string; ratePerWindow: number; windowMs: number; maxQueue: number };
  statsIntervalMs: number;
  statsJson: boolean;
  logLevel: LogLevel;
  /** Stop gracefully once every shard is at its tip and nothing arrived for this long. */
  exitWhenIdleMs: number | undefined;
  /** Longest wait on stop for in-flight output before giving up (exit 1, no checkpoint of it). */
  shutdownTimeoutMs: number;
  source: { minPollIntervalMs?: number; idlePollIntervalMs?: number; getRecordsLimit?: number; shardSyncIntervalMs?: number };
  /** Detection options, exactly as `detect` parses them. */
  detect: DetectConfig;
  /** Where to serve metrics, health and the live page (src/http); undefined: off. */
  http?: HttpAddress | undefined;
}

function httpAddress(text: string | undefined): HttpAddress | undefined {
  if (text === undefined) return undefined;
  try {
    return parseHttpAddress(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const DEFAULT_CHECKPOINT = 'file:./rcf-stream.checkpoint';
export const DEFAULT_CHECKPOINT_RECORDS = 10_000;
export const DEFAULT_CHECKPOINT_INTERVAL_S = 60;
export const DEFAULT_STATS_INTERVAL_S = 60;
export const DEFAULT_SNS_SUBJECT = 'Anomaly detected';

export const RUN_HELP = `Usage: rcf-stream run [options]

The streaming service: reads records (JSON objects) from a Kinesis data stream, scores
them with Random Cut Forest, writes results to an output stream and notifies anomalies
on an SNS topic. Every option can also be set as an environment variable RCF_<OPTION>
(e.g. RCF_INPUT_STREAM) or as a camelCase key in --config FILE (e.g. "inputStreamName");
flags win over the environment, which wins over the file. Credentials and region come
from the AWS SDK's default chain (AWS_PROFILE, AWS_REGION, instance roles, ...).

Streams and AWS
  --input-stream NAME|ARN      stream to read (JSON: inputStreamName)         [required]
  --output-stream NAME|ARN     stream for results (JSON: outputStreamName)    [stdout]
  --sns-topic-arn ARN          topic for anomaly notifications (snsTopicArn)
  --region REGION              AWS region                                    [SDK chain]
  --endpoint-url URL           endpoint for every service (local servers)
  --kinesis-endpoint URL       --sns-endpoint URL  --dynamodb-endpoint URL  --s3-endpoint URL
  --http1                      HTTP/1.1 for every client (default with a Kinesis endpoint)
  --config FILE                JSON file with any of these options

Reading
  --start-position P           LATEST, TRIM_HORIZON or AT_TIMESTAMP, for shards the
                               checkpoint does not cover                       [LATEST]
  --start-timestamp ISO        with AT_TIMESTAMP
  --get-records-limit N        records per GetRecords (1-10000)               [10000]
  --poll-interval-ms N         least time between GetRecords on a shard       [200]
  --idle-poll-ms N             wait after an empty read at a shard's tip      [1000]
  --shard-sync-interval S      re-list shards every S seconds (0: never)      [60]

Checkpoints (positions and models, saved together)
  --checkpoint SPEC            file:PATH | dynamodb:TABLE/APP | s3:BUCKET[/PREFIX]/APP | none
                                                                  [${DEFAULT_CHECKPOINT}]
  --checkpoint-records N       save after N records                           [${DEFAULT_CHECKPOINT_RECORDS}]
  --checkpoint-interval S      ... or after S seconds                         [${DEFAULT_CHECKPOINT_INTERVAL_S}]
  --reset-models               start new models; keep the checkpoint's positions

Detection (as for rcf-stream detect)
  --fields a,b,c  --time-field NAME  --key-field NAME  --max-keys N
  --trees N  --sample-size N  --shingle N  --time-decay X  --output-after N
  --seed N  --engine wasm|ts  --threshold X|auto  --parity aws  --explain

Output
  --emit anomalies|all         which records go to the output stream          [anomalies]
  --output-fields a,b,...      only these fields (input fields, score, anomaly, grade,
                               threshold, explanation, recordId); --shape flink
  --output-partition-key K     key | id | input | field:NAME                  [key]
                               key: the --key-field value, else the record id
  --dead-letter FILE           append records that cannot be scored to FILE
  --dead-letter-stream NAME    ... and/or put them on this Kinesis stream
  --sns-subject TEXT           notification subject                  [${DEFAULT_SNS_SUBJECT}]
  --sns-rate N                 notifications per window; more are summarised  [10]
  --sns-window S               rate window in seconds                         [60]
  --sns-queue N                notifications waiting for SNS; more are dropped [1000]

Operation
  --stats-interval S           stats line on stderr every S seconds (0: off)  [${DEFAULT_STATS_INTERVAL_S}]
  --stats-json                 stats and logs as JSON lines
  --log-level L                debug, info, warn or error                     [info]
  --http HOST:PORT             serve /metrics, /healthz, /readyz and a live page at /
                               (PORT alone binds 127.0.0.1)                     [off]
  --exit-when-idle S           stop once all shards are at their tip and idle for S seconds
  --shutdown-timeout S         on SIGINT/SIGTERM, wait this long for in-flight output [30]
  -h, --help                   show this help

Each output record carries "recordId": shardId:sequenceNumber[:subSequence], stable
across restarts, so consumers can drop the duplicates that at-least-once delivery
allows after a restart. On SIGINT/SIGTERM the service finishes the batch in flight,
flushes its output, saves a checkpoint and exits 0.
`;

type OptionType = 'string' | 'boolean';

interface OptionSpec {
  type: OptionType;
  /** JSON keys besides the camelCase of the flag. */
  aliases?: string[];
  /** Passed to `detect`'s parser. */
  detect?: boolean;
}

/** Every option of `run`. */
const OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string' },
  'input-stream': { type: 'string', aliases: ['inputStreamName', 'inputStreamArn'] },
  'output-stream': { type: 'string', aliases: ['outputStreamName', 'outputStreamArn'] },
  'sns-topic-arn': { type: 'string' },
  region: { type: 'string' },
  'endpoint-url': { type: 'string', aliases: ['endpoint'] },
  'kinesis-endpoint': { type: 'string', aliases: ['kinesisEndpointUrl'] },
  'sns-endpoint': { type: 'string', aliases: ['snsEndpointUrl'] },
  'dynamodb-endpoint': { type: 'string', aliases: ['dynamoDbEndpoint', 'dynamodbEndpointUrl', 'dynamoDbEndpointUrl'] },
  's3-endpoint': { type: 'string', aliases: ['s3EndpointUrl'] },
  http1: { type: 'boolean' },
  'start-position': { type: 'string' },
  'start-timestamp': { type: 'string' },
  'get-records-limit': { type: 'string' },
  'poll-interval-ms': { type: 'string' },
  'idle-poll-ms': { type: 'string' },
  'shard-sync-interval': { type: 'string' },
  checkpoint: { type: 'string' },
  'checkpoint-records': { type: 'string' },
  'checkpoint-interval': { type: 'string' },
  'reset-models': { type: 'boolean' },
  emit: { type: 'string' },
  'output-partition-key': { type: 'string' },
  'dead-letter': { type: 'string' },
  'dead-letter-stream': { type: 'string' },
  'sns-subject': { type: 'string' },
  'sns-rate': { type: 'string' },
  'sns-window': { type: 'string' },
  'sns-queue': { type: 'string' },
  'stats-interval': { type: 'string' },
  'stats-json': { type: 'boolean' },
  'log-level': { type: 'string' },
  http: { type: 'string' },
  'exit-when-idle': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  // Detection: validated by detect's own parser.
  fields: { type: 'string', detect: true },
  'time-field': { type: 'string', detect: true },
  'key-field': { type: 'string', detect: true },
  'max-keys': { type: 'string', detect: true },
  trees: { type: 'string', detect: true, aliases: ['numberOfTrees'] },
  'sample-size': { type: 'string', detect: true },
  shingle: { type: 'string', detect: true, aliases: ['shingleSize'] },
  'time-decay': { type: 'string', detect: true },
  'output-after': { type: 'string', detect: true },
  seed: { type: 'string', detect: true, aliases: ['randomSeed'] },
  engine: { type: 'string', detect: true },
  threshold: { type: 'string', detect: true },
  parity: { type: 'string', detect: true },
  explain: { type: 'boolean', detect: true },
  'output-fields': { type: 'string', detect: true },
  shape: { type: 'string', detect: true },
  help: { type: 'boolean' },
};

function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `RCF_INPUT_STREAM` for `input-stream`. */
export function envName(flag: string): string {
  return `RCF_${flag.toUpperCase().replace(/-/g, '_')}`;
}

const JSON_KEYS = new Map<string, string>();
for (const [flag, spec] of Object.entries(OPTIONS)) {
  if (flag === 'help' || flag === 'config') continue;
  JSON_KEYS.set(camel(flag), flag);
  for (const a of spec.aliases ?? []) JSON_KEYS.set(a, flag);
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off', '']);

function booleanText(text: string, where: string): boolean {
  const t = text.trim().toLowerCase();
  if (TRUE_WORDS.has(t)) return true;
  if (FALSE_WORDS.has(t)) return false;
  throw new UsageError(`${where} must be true or false, got ${JSON.stringify(text)}`);
}

/** Values of a JSON config object, as flag values; unknown keys are errors (typos must not pass silently). */
function fromJson(json: unknown, file: string): Parsed['values'] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`${file}: must hold a JSON object`);
  const out: Parsed['values'] = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const flag = JSON_KEYS.get(key);
    if (flag === undefined) throw new UsageError(`${file}: unknown option ${JSON.stringify(key)}`);
    const spec = OPTIONS[flag]!;
    if (value === null || value === undefined) continue;
    if (spec.type === 'boolean') {
      if (typeof value === 'boolean') out[flag] = value;
      else if (typeof value === 'string') out[flag] = booleanText(value, `${file}: ${key}`);
      else throw new UsageError(`${file}: ${key} must be true or false`);
    } else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      out[flag] = value.join(',');
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
      out[flag] = String(value);
    } else {
      throw new UsageError(`${file}: ${key} must be a string or a number`);
    }
  }
  return out;
}

function fromEnv(env: NodeJS.ProcessEnv): Parsed['values'] {
  const out: Parsed['values'] = {};
  for (const [flag, spec] of Object.entries(OPTIONS)) {
    if (flag === 'help') continue;
    const text = env[envName(flag)];
    if (text === undefined) continue;
    out[flag] = spec.type === 'boolean' ? booleanText(text, envName(flag)) : text;
  }
  return out;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Reads the --config file (tests substitute it). */
  readTextFile?: (path: string) => Promise<string>;
}

/** Parses argv, environment and config file. Returns undefined for --help; throws UsageError. */
export async function loadServiceConfig(argv: string[], options: LoadOptions = {}): Promise<ServiceConfig | undefined> {
  const env = options.env ?? process.env;
  const parseOptions = Object.fromEntries(
    Object.entries(OPTIONS).map(([flag, spec]) => [flag, flag === 'help' ? { type: 'boolean' as const, short: 'h' } : { type: spec.type }]),
  );
  const { values: flags } = parseCommandArgs(argv, parseOptions, 0);
  if (flags.help === true) return undefined;

  const envValues = fromEnv(env);
  const configPath = stringOption(flags, 'config') ?? stringOption(envValues, 'config');
  let fileValues: Parsed['values'] = {};
  if (configPath !== undefined) {
    let text: string;
    try {
      text = await (options.readTextFile ?? ((p) => readFile(p, 'utf8')))(configPath);
    } catch (error) {
      throw new UsageError(`--config ${JSON.stringify(configPath)}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new UsageError(`--config ${JSON.stringify(configPath)}: not JSON (${(error as Error).message})`);
    }
    fileValues = fromJson(json, configPath);
  }
  const values: Parsed['values'] = { ...fileValues, ...envValues, ...flags };
  return buildConfig(values);
}

function streamRef(text: string | undefined): StreamRef | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const t = text.trim();
  return t.startsWith('arn:') ? { streamArn: t } : { streamName: t };
}

/** `file:PATH` (or a bare path), `dynamodb:TABLE/APP`, `s3:BUCKET[/PREFIX]/APP`, `none`. */
export function parseCheckpointSpec(text: string): CheckpointSpec {
  const t = text.trim();
  if (t === 'none') return { kind: 'none' };
  const m = /^(file|dynamodb|s3):(.*)$/.exec(t);
  if (m === null) {
    if (t === '') throw new UsageError('--checkpoint must not be empty');
    return { kind: 'file', path: t };
  }
  const [, scheme, rest] = m as unknown as [string, string, string];
  if (scheme === 'file') {
    if (rest === '') throw new UsageError('--checkpoint file: needs a path');
    return { kind: 'file', path: rest };
  }
  const parts = rest.split('/');
  if (parts.length < 2 || parts.some((p) => p === '')) {
    throw new UsageError(`--checkpoint ${scheme}: must be ${scheme === 's3' ? 's3:BUCKET[/PREFIX]/APP' : 'dynamodb:TABLE/APP'}, got ${JSON.stringify(t)}`);
  }
  if (scheme === 'dynamodb') {
    if (parts.length !== 2) throw new UsageError(`--checkpoint dynamodb: must be dynamodb:TABLE/APP, got ${JSON.stringify(t)}`);
    return { kind: 'dynamodb', table: parts[0]!, app: parts[1]! };
  }
  const spec: CheckpointSpec = { kind: 's3', bucket: parts[0]!, app: parts[parts.length - 1]! };
  if (!/^[A-Za-z0-9._-]+$/.test(spec.app)) throw new UsageError(`--checkpoint s3: the application name may use only letters, digits, '.', '_' and '-'`);
  if (parts.length > 2) spec.prefix = `${parts.slice(1, -1).join('/')}/`;
  return spec;
}

export function parsePartitionKeySpec(text: string): PartitionKeySpec {
  const t = text.trim();
  if (t === 'key' || t === 'id' || t === 'input') return { kind: t };
  if (t.startsWith('field:') && t.length > 'field:'.length) return { kind: 'field', name: t.slice('field:'.length) };
  throw new UsageError(`--output-partition-key must be key, id, input or field:NAME, got ${JSON.stringify(text)}`);
}

function seconds(values: Parsed['values'], name: string, min: number): number | undefined {
  const s = numberOption(values, name, min);
  return s === undefined ? undefined : Math.round(s * 1000);
}

function url(values: Parsed['values'], name: string): string | undefined {
  const text = stringOption(values, name);
  if (text === undefined || text.trim() === '') return undefined;
  try {
    const u = new URL(text.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new UsageError(`--${name} must be an http(s) URL, got ${JSON.stringify(text)}`);
  }
  return text.trim();
}

const DETECT_FLAGS = Object.entries(OPTIONS)
  .filter(([, s]) => s.detect === true)
  .map(([flag, s]) => [flag, s.type] as const);

function buildConfig(values: Parsed['values']): ServiceConfig {
  const input = streamRef(stringOption(values, 'input-stream'));
  if (input === undefined) throw new UsageError(`--input-stream is required (or ${envName('input-stream')}, or "inputStreamName" in --config)`);

  // detect's parser validates the detection options; it gets them back as argv.
  const detectArgv: string[] = [];
  for (const [flag, type] of DETECT_FLAGS) {
    const v = values[flag];
    if (v === undefined) continue;
    if (type === 'boolean') {
      if (v === true) detectArgv.push(`--${flag}`);
    } else if (typeof v === 'string') detectArgv.push(`--${flag}=${v}`);
  }
  const detect = parseDetectArgs(detectArgv);
  if (detect === undefined) throw new UsageError('unexpected --help');

  const all = url(values, 'endpoint-url');
  const endpoints: AwsEndpoints = {};
  for (const [svc, flag] of [
    ['kinesis', 'kinesis-endpoint'],
    ['sns', 'sns-endpoint'],
    ['dynamodb', 'dynamodb-endpoint'],
    ['s3', 's3-endpoint'],
  ] as const) {
    const e = url(values, flag) ?? all;
    if (e !== undefined) endpoints[svc] = e;
  }
  const aws: AwsConfig = {};
  const region = stringOption(values, 'region');
  if (region !== undefined && region.trim() !== '') aws.region = region.trim();
  if (Object.keys(endpoints).length > 0) aws.endpoints = endpoints;
  if (values.http1 === true) aws.http1 = true;

  const startType = (stringOption(values, 'start-position') ?? 'LATEST').trim().toUpperCase();
  let startPosition: StartPosition;
  if (startType === 'LATEST' || startType === 'TRIM_HORIZON') {
    if (stringOption(values, 'start-timestamp') !== undefined) throw new UsageError('--start-timestamp needs --start-position AT_TIMESTAMP');
    startPosition = { type: startType };
  } else if (startType === 'AT_TIMESTAMP') {
    const ts = stringOption(values, 'start-timestamp');
    const date = ts === undefined ? undefined : new Date(/^\d+(\.\d+)?$/.test(ts.trim()) ? Number(ts) * 1000 : ts);
    if (date === undefined || Number.isNaN(date.getTime())) {
      throw new UsageError(`--start-position AT_TIMESTAMP needs --start-timestamp (ISO-8601 or epoch seconds)${ts === undefined ? '' : `, got ${JSON.stringify(ts)}`}`);
    }
    startPosition = { type: 'AT_TIMESTAMP', timestamp: date };
  } else {
    throw new UsageError(`--start-position must be LATEST, TRIM_HORIZON or AT_TIMESTAMP, got ${JSON.stringify(stringOption(values, 'start-position'))}`);
  }

  const source: ServiceConfig['source'] = {};
  const limit = integerOption(values, 'get-records-limit', 1, 10_000);
  if (limit !== undefined) source.getRecordsLimit = limit;
  const poll = integerOption(values, 'poll-interval-ms', 200, 3_600_000);
  if (poll !== undefined) source.minPollIntervalMs = poll;
  const idle = integerOption(values, 'idle-poll-ms', 200, 3_600_000);
  if (idle !== undefined) source.idlePollIntervalMs = idle;
  const sync = seconds(values, 'shard-sync-interval', 0);
  if (sync !== undefined) source.shardSyncIntervalMs = sync;

  return {
    input,
    output: streamRef(stringOption(values, 'output-stream')),
    snsTopicArn: stringOption(values, 'sns-topic-arn')?.trim() || undefined,
    aws,
    startPosition,
    checkpoint: parseCheckpointSpec(stringOption(values, 'checkpoint') ?? DEFAULT_CHECKPOINT),
    checkpointRecords: integerOption(values, 'checkpoint-records', 1, Number.MAX_SAFE_INTEGER) ?? DEFAULT_CHECKPOINT_RECORDS,
    checkpointIntervalMs: seconds(values, 'checkpoint-interval', 0.05) ?? DEFAULT_CHECKPOINT_INTERVAL_S * 1000,
    resetModels: values['reset-models'] === true,
    emit: choiceOption(values, 'emit', ['anomalies', 'all'] as const) ?? 'anomalies',
    outputPartitionKey: parsePartitionKeySpec(stringOption(values, 'output-partition-key') ?? 'key'),
    deadLetterFile: stringOption(values, 'dead-letter'),
    deadLetterStream: streamRef(stringOption(values, 'dead-letter-stream')),
    sns: {
      subject: stringOption(values, 'sns-subject') ?? DEFAULT_SNS_SUBJECT,
      ratePerWindow: integerOption(values, 'sns-rate', 1, 1_000_000) ?? 10,
      windowMs: seconds(values, 'sns-window', 0.001) ?? 60_000,
      maxQueue: integerOption(values, 'sns-queue', 1, 1_000_000) ?? 1000,
    },
    statsIntervalMs: seconds(values, 'stats-interval', 0) ?? DEFAULT_STATS_INTERVAL_S * 1000,
    statsJson: values['stats-json'] === true,
    logLevel: choiceOption(values, 'log-level', ['debug', 'info', 'warn', 'error'] as const) ?? 'info',
    exitWhenIdleMs: seconds(values, 'exit-when-idle', 0),
    http: httpAddress(stringOption(values, 'http')),
    shutdownTimeoutMs: seconds(values, 'shutdown-timeout', 0) ?? 30_000,
    source,
    detect,
  };
}
