/**
 * Configuration of the Lambda handler, from its environment only.
 *
 * The RCF_* variables are `rcf-stream run`'s, with the same names, meanings,
 * validation and defaults (they go through run's own loader,
 * src/service/run-config.ts, whose messages name the variable as given:
 * RCF_TREES). What the event
 * source mapping decides instead (which stream, where to start, when to save)
 * is refused rather than silently ignored, so a setting copied from `run` that
 * cannot hold here is a clear error at cold start.
 *
 * State: RCF_CHECKPOINT=s3:BUCKET[/PREFIX]; one object per shard at
 * PREFIX/STREAM/SHARD.state (default prefix rcf-stream/state).
 * Endpoints: the SDK's AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL, which
 * win over run's RCF_*_ENDPOINT spellings; the same code then runs against AWS
 * and local servers.
 */
import type { AwsConfig, AwsEndpoints } from '../aws/clients.js';
import { envName, loadServiceConfig, type ServiceConfig } from '../service/run-config.js';
import { RcfStreamError } from '../util/errors.js';

/** A setting the handler cannot run with; the message names the variable. */
export class LambdaConfigError extends RcfStreamError {
  override readonly name = 'LambdaConfigError';
  readonly code = 'LAMBDA_CONFIG';
}

export const DEFAULT_STATE_PREFIX = 'rcf-stream/state/';

export interface StateLocation {
  bucket: string;
  /** Ends with '/'. */
  prefix: string;
}

export interface LambdaConfig {
  /** run's settings: detection, output stream, SNS, emit, partition key, dead-letter stream, logging. */
  service: ServiceConfig;
  state: StateLocation;
  aws: AwsConfig;
}

/** run's options that the event source mapping (or per-batch state) replaces. */
const REFUSED: Record<string, string> = {
  'input-stream': 'the event source mapping names the stream',
  'start-position': "the event source mapping's StartingPosition decides it",
  'start-timestamp': "the event source mapping's StartingPositionTimestamp decides it",
  'checkpoint-records': 'state is saved after every batch',
  'checkpoint-interval': 'state is saved after every batch',
  'reset-models': 'delete the state objects instead',
  'dead-letter': "Lambda's file system is temporary: use RCF_DEAD_LETTER_STREAM",
  'exit-when-idle': 'the function runs per batch',
  'get-records-limit': "the event source mapping's BatchSize decides it",
  'poll-interval-ms': 'the event source mapping polls',
  'idle-poll-ms': 'the event source mapping polls',
  'shard-sync-interval': 'the event source mapping follows the shards',
  'shutdown-timeout': "the function's timeout bounds a batch",
  'stats-interval': 'each batch logs one summary line',
  config: 'set RCF_* variables on the function',
};

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `s3:BUCKET[/PREFIX]`. */
export function parseStateLocation(text: string | undefined): StateLocation {
  const name = envName('checkpoint');
  if (text === undefined || text.trim() === '') throw new LambdaConfigError(`${name} is required: s3:BUCKET[/PREFIX] (where each shard's state lives)`);
  const m = /^s3:([^/]+)(?:\/(.*))?$/.exec(text.trim());
  if (m === null) throw new LambdaConfigError(`${name} must be s3:BUCKET[/PREFIX], got ${JSON.stringify(text)}`);
  const bucket = m[1]!;
  if (!BUCKET.test(bucket)) throw new LambdaConfigError(`${name}: ${JSON.stringify(bucket)} is not an S3 bucket name`);
  const raw = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (raw.split('/').some((p) => p === '' && raw !== '')) throw new LambdaConfigError(`${name}: the prefix must not contain empty segments, got ${JSON.stringify(text)}`);
  return { bucket, prefix: raw === '' ? DEFAULT_STATE_PREFIX : `${raw}/` };
}

function endpoint(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  if (v === undefined || v === '') return undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new LambdaConfigError(`${name} must be an http(s) URL, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Reads the handler's configuration; throws LambdaConfigError naming the variable. */
export async function loadLambdaConfig(env: NodeJS.ProcessEnv): Promise<LambdaConfig> {
  const refused = Object.keys(REFUSED).filter((flag) => env[envName(flag)] !== undefined);
  if (refused.length > 0) {
    throw new LambdaConfigError(`not used by the Lambda handler: ${refused.map((f) => `${envName(f)} (${REFUSED[f]})`).join('; ')}`);
  }
  const state = parseStateLocation(env[envName('checkpoint')]);
  const runEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('RCF_') && k !== envName('checkpoint')) runEnv[k] = v;
  // run insists on an input stream; here the event names it, so any placeholder does.
  let service: ServiceConfig | undefined;
  try {
    service = await loadServiceConfig(['--input-stream', 'event-source-mapping', '--checkpoint', 'none'], { env: runEnv });
  } catch (error) {
    // run's loader names the option as it was given (RCF_TREES), so its message stands.
    throw new LambdaConfigError(`invalid RCF_* setting: ${(error as Error).message}`);
  }
  if (service === undefined) throw new LambdaConfigError('unexpected --help');
  const endpoints: AwsEndpoints = { ...service.aws.endpoints };
  const all = endpoint(env, 'AWS_ENDPOINT_URL');
  for (const [svc, name] of [
    ['kinesis', 'AWS_ENDPOINT_URL_KINESIS'],
    ['sns', 'AWS_ENDPOINT_URL_SNS'],
    ['s3', 'AWS_ENDPOINT_URL_S3'],
  ] as const) {
    const e = endpoint(env, name) ?? all;
    if (e !== undefined) endpoints[svc] = e;
  }
  const aws: AwsConfig = { ...service.aws };
  delete aws.endpoints;
  if (Object.keys(endpoints).length > 0) aws.endpoints = endpoints;
  return { service, state, aws };
}
