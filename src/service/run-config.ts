/**
 * Configuration of `rcf-stream run`, merged from three places (later wins):
 *
 *   JSON file (--config FILE)  <  environment (RCF_*)  <  command-line flags
 *
 * Every flag `--some-option` can also be given as the environment variable
 * `RCF_SOME_OPTION` and as the JSON key `someOption`; the reference scenario's
 * property names (`inputStreamName`, `outputStreamName`, `snsTopicArn`,
 * `region`, `endpointUrl`) are accepted as aliases. Detection options come from
 * the one table of src/detect/options.ts, validated by readDetectionSettings as
 * for `detect`; an error names the option as it was given (`--trees`,
 * `RCF_TREES`, or the config file's key).
 *
 * Credentials never appear here: they come from the AWS SDK's provider chain.
 * Shared by `run` (src/cli/run-command.ts) and the Lambda handler (src/lambda/config.ts),
 * which reads the same RCF_* variables.
 */
import { readFile } from 'node:fs/promises';
import type { AwsConfig, AwsEndpoints } from '../aws/clients.js';
import type { StartPosition } from '../aws/kinesis-source.js';
import {
  UsageError,
  choiceOption,
  integerOption,
  numberOption,
  parseCommandArgs,
  stringOption,
  type Parsed,
} from '../util/option-args.js';
import { defaultCheckpointPath } from '../checkpoint/file-store.js';
import { MODEL_SCOPES, type DetectionSettings } from '../detect/settings.js';
import { DETECTION_OPTIONS, DetectionOptionSet, flagOf, readDetectionSettings, spellOption } from '../detect/options.js';
import { formatHelpSections } from '../util/help-text.js';
import { OptionError, describeOptionError } from '../util/option-error.js';
import { parseHttpAddress, type HttpAddress } from '../http/address.js';

export type { StreamRef, CheckpointSpec, PartitionKeySpec, ServiceConfig, LogLevel } from './settings.js';
import type { StreamRef, CheckpointSpec, PartitionKeySpec, ServiceConfig, LogLevel } from './settings.js';

/** Shown in help; the path is defaultCheckpointPath(input stream). */
export const DEFAULT_CHECKPOINT = 'file:./rcf-stream-STREAM.checkpoint';
export const DEFAULT_CHECKPOINT_RECORDS = 10_000;
export const DEFAULT_CHECKPOINT_INTERVAL_S = 60;
export const DEFAULT_STATS_INTERVAL_S = 60;
export const DEFAULT_SNS_SUBJECT = 'Anomaly detected';

/** run takes every detection option of the table (src/detect/options.ts). */
const DETECTION = new DetectionOptionSet('all');

/** "a, b and c". */
function words(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The table's JSON names that are not the camelCase of their flag (`numberOfTrees` for --trees). */
const RENAMED_KEYS = DETECTION_OPTIONS.filter((o) => o.key !== camel(o.flag));

export const RUN_HELP = `Usage: rcf-stream run [options]

The streaming service: reads records (JSON objects) from a Kinesis data stream, scores
them with Random Cut Forest, writes results to an output stream and notifies anomalies
on an SNS topic. Every option can also be set as an environment variable RCF_<OPTION>
(e.g. RCF_INPUT_STREAM) or as a camelCase key in --config FILE (e.g. "inputStreamName");
flags win over the environment, which wins over the file. Credentials and region come
from the AWS SDK's default chain (AWS_PROFILE, AWS_REGION, instance roles, ...).

${formatHelpSections([
  {
    title: 'Streams and AWS',
    rows: [
      { option: '--input-stream NAME|ARN', text: 'stream to read (JSON: inputStreamName)', default: 'required' },
      { option: '--output-stream NAME|ARN', text: 'stream for results (JSON: outputStreamName)', default: 'stdout' },
      { option: '--sns-topic-arn ARN', text: 'topic for anomaly notifications (snsTopicArn)' },
      { option: '--region REGION', text: 'AWS region', default: 'SDK chain' },
      { option: '--endpoint-url URL', text: 'endpoint for every service (local servers)' },
      { option: '--kinesis-endpoint URL', text: "Kinesis's endpoint, instead of --endpoint-url" },
      { option: '--sns-endpoint URL', text: "SNS's endpoint" },
      { option: '--dynamodb-endpoint URL', text: "DynamoDB's endpoint (checkpoints)" },
      { option: '--s3-endpoint URL', text: "S3's endpoint (checkpoints)" },
      { option: '--http1', text: 'HTTP/1.1 for every client (default with a Kinesis endpoint)' },
      { option: '--config FILE', text: 'JSON file with any of these options' },
    ],
  },
  {
    title: 'Reading',
    rows: [
      { option: '--start-position P', text: 'LATEST, TRIM_HORIZON or AT_TIMESTAMP, for shards the checkpoint does not cover', default: 'LATEST' },
      { option: '--start-timestamp ISO', text: 'with AT_TIMESTAMP: ISO-8601 or epoch seconds' },
      { option: '--get-records-limit N', text: 'records per GetRecords (1-10000)', default: '10000' },
      { option: '--poll-interval-ms N', text: 'least time between GetRecords on a shard, in milliseconds', default: '200' },
      { option: '--idle-poll-ms N', text: "wait after an empty read at a shard's tip, in milliseconds", default: '1000' },
      { option: '--shard-sync-interval S', text: 're-list shards every S seconds (0: never)', default: '60' },
    ],
  },
  {
    title: 'Checkpoints (positions and models, saved together)',
    rows: [
      { option: '--checkpoint SPEC', text: 'file:PATH | dynamodb:TABLE/APP | s3:BUCKET[/PREFIX]/APP | none', default: DEFAULT_CHECKPOINT },
      { option: '--checkpoint-records N', text: 'save after N records', default: String(DEFAULT_CHECKPOINT_RECORDS) },
      { option: '--checkpoint-interval S', text: '... or after S seconds', default: String(DEFAULT_CHECKPOINT_INTERVAL_S) },
      { option: '--reset-models', text: "start new models; keep the checkpoint's positions" },
    ],
  },
  {
    title: 'Scoring',
    rows: [
      {
        option: '--model-scope shard|key|stream',
        text:
          "shard: one model per shard (per key within it with --key-field); scores depend only on each shard's order. " +
          'key: one model per --key-field value across shards; refused when a key arrives on two open shards. ' +
          'stream: one model for all shards; refused while two shards are open at once',
        default: 'shard',
      },
      {
        option: '--workers N',
        text:
          "scoring threads, each owning whole shards' models; scores equal one thread's. Default: the cores, at most 8 " +
          'and at most the shards open at start (shards added by resharding share those threads); ' +
          '1 (this thread) with --model-scope key or stream, which refuse more',
        default: 'min(cores, 8, shards)',
      },
    ],
  },
  {
    title: 'Detection (as for rcf-stream detect)',
    rows: [...DETECTION.rows('input'), ...DETECTION.rows('model'), ...DETECTION.rows('decision')],
    notes: [
      `--config FILE also takes the library's names ${words(RENAMED_KEYS.map((o) => `"${o.key}"`))} for ${words(RENAMED_KEYS.map((o) => `"${camel(o.flag)}"`))}.`,
    ],
  },
  {
    title: 'Output',
    rows: [
      { option: '--emit anomalies|all', text: 'which records go to the output stream', default: 'anomalies' },
      ...DETECTION.rows('output'),
      { option: '--output-partition-key K', text: 'key | id | input | field:NAME; key: the --key-field value, else the record id', default: 'key' },
      { option: '--dead-letter FILE', text: 'append records that cannot be scored to FILE' },
      { option: '--dead-letter-stream NAME', text: '... and/or put them on this Kinesis stream' },
      { option: '--sns-subject TEXT', text: 'notification subject', default: DEFAULT_SNS_SUBJECT },
      { option: '--sns-rate N', text: 'notifications per window; more are summarised', default: '10' },
      { option: '--sns-window S', text: 'rate window in seconds', default: '60' },
      { option: '--sns-queue N', text: 'notifications waiting for SNS; more are dropped', default: '1000' },
    ],
  },
  {
    title: 'Operation',
    rows: [
      { option: '--stats-interval S', text: 'stats line on stderr every S seconds (0: off)', default: String(DEFAULT_STATS_INTERVAL_S) },
      { option: '--stats-json', text: 'stats and logs as JSON lines' },
      { option: '--log-level L', text: 'debug, info, warn or error', default: 'info' },
      { option: '--http HOST:PORT', text: 'serve /metrics, /healthz, /readyz and a live page at / (PORT alone binds 127.0.0.1)', default: 'off' },
      { option: '--exit-when-idle S', text: 'stop once all shards are at their tip and idle for S seconds' },
      { option: '--shutdown-timeout S', text: 'on SIGINT/SIGTERM, wait this long for in-flight output, in seconds', default: '30' },
      { option: '-h, --help', text: 'show this help' },
    ],
  },
])}
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
  'model-scope': { type: 'string' },
  workers: { type: 'string' },
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
  http: { type: 'string', aliases: ['httpAddress'] },
  'exit-when-idle': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  // Detection: the table of src/detect/options.ts (its JSON key is an alias).
  ...Object.fromEntries(DETECTION_OPTIONS.map((o) => [o.flag, { type: o.type, detect: true, ...(o.key !== camel(o.flag) ? { aliases: [o.key] } : {}) }])),
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
function fromJson(json: unknown, file: string, keys: Map<string, string>): Parsed['values'] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`${file}: must hold a JSON object`);
  const out: Parsed['values'] = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const flag = JSON_KEYS.get(key);
    if (flag === undefined) throw new UsageError(`${file}: unknown option ${JSON.stringify(key)}`);
    keys.set(flag, key);
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
  const fileKeys = new Map<string, string>();
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
    fileValues = fromJson(json, configPath, fileKeys);
  }
  const values: Parsed['values'] = { ...fileValues, ...envValues, ...flags };
  const origins = new Map<string, Origin>();
  for (const flag of Object.keys(fileValues)) origins.set(flag, { file: configPath!, key: fileKeys.get(flag) ?? camel(flag) });
  for (const flag of Object.keys(envValues)) origins.set(flag, 'env');
  for (const flag of Object.keys(flags)) origins.set(flag, 'flag');
  return buildConfig(values, origins);
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
    // "dynamo:tbl/app" is a typo of a scheme far more often than a file name: refuse it.
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(t);
    if (scheme !== null) {
      throw new UsageError(`--checkpoint: unknown checkpoint scheme "${scheme[1]}:"; use file:, dynamodb:, s3: or none (a file path with a colon is written file:${t})`);
    }
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

function httpAddress(values: Parsed['values'], origins: Map<string, Origin>): HttpAddress | undefined {
  const text = stringOption(values, 'http');
  if (text === undefined) return undefined;
  try {
    return parseHttpAddress(text, spelled('http', origins));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
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

function modelScopeOf(values: Parsed['values'], detect: DetectionSettings): ServiceConfig['modelScope'] {
  const scope = choiceOption(values, 'model-scope', MODEL_SCOPES) ?? 'shard';
  if (scope === 'key' && detect.mapping.keyField === undefined) throw new UsageError('--model-scope key needs --key-field');
  return scope;
}

/** --workers N; left out when not given (the service then chooses: src/service/worker-count.ts). */
function workersOf(values: Parsed['values'], scope: ServiceConfig['modelScope'], origins: Map<string, Origin>): { workers?: number } {
  const workers = integerOption(values, 'workers', 1, 256);
  if (workers === undefined) return {};
  if (workers > 1 && scope !== 'shard') {
    throw new UsageError(
      `${spelled('workers', origins)} above 1 needs --model-scope shard (each worker owns whole shards' models); with --model-scope ${scope} one model spans shards and cannot be split`,
    );
  }
  return { workers };
}

/** Where a value came from: a flag, the environment, or a key of the config file. */
type Origin = 'flag' | 'env' | { file: string; key: string };

/** The option named as the user wrote it: a flag, an RCF_* variable, or a key of the --config file. */
function spelled(flag: string, origins: Map<string, Origin>): string {
  const origin = origins.get(flag);
  return origin === 'env' ? spellOption(flag, 'env') : origin !== undefined && origin !== 'flag' ? `${origin.file}: ${origin.key}` : spellOption(flag, 'flag');
}

function buildConfig(values: Parsed['values'], origins: Map<string, Origin> = new Map()): ServiceConfig {
  const input = streamRef(stringOption(values, 'input-stream'));
  if (input === undefined) throw new UsageError(`--input-stream is required (or ${envName('input-stream')}, or "inputStreamName" in --config)`);

  let detect: DetectionSettings;
  try {
    detect = readDetectionSettings(values);
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    // Named as the user wrote it: a flag, an RCF_* variable, or a key of the --config file.
    throw new UsageError(describeOptionError(spelled(flagOf(error.option), origins), error.detail));
  }

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
    checkpoint: parseCheckpointSpec(stringOption(values, 'checkpoint') ?? `file:${defaultCheckpointPath(input.streamName ?? input.streamArn!)}`),
    checkpointRecords: integerOption(values, 'checkpoint-records', 1, Number.MAX_SAFE_INTEGER) ?? DEFAULT_CHECKPOINT_RECORDS,
    checkpointIntervalMs: seconds(values, 'checkpoint-interval', 0.05) ?? DEFAULT_CHECKPOINT_INTERVAL_S * 1000,
    resetModels: values['reset-models'] === true,
    modelScope: modelScopeOf(values, detect),
    ...workersOf(values, modelScopeOf(values, detect), origins),
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
    shutdownTimeoutMs: seconds(values, 'shutdown-timeout', 0) ?? 30_000,
    http: httpAddress(values, origins),
    source,
    detect,
  };
}
