/**
 * Retry helpers shared by the Kinesis source/sink and the SNS notifier.
 *
 * The AWS clients built for these classes run with `maxAttempts: 1` (see
 * clients.ts) so that retries happen here, once, with backoff that is counted
 * in stats and interruptible by `stop()`; SDK retries would stack on top and
 * be invisible. Errors are classified by the SDK's own rules
 * (@smithy/service-error-classification), plus a few names and codes it lacks.
 */
import { isServerError, isThrottlingError, isTransientError } from '@smithy/service-error-classification';

import { STATUS_CODES } from 'node:http';
import { isRcfStreamError } from '../util/errors.js';

/** Optional structured logger; every method may be absent. Never pass secrets in fields. */
export interface Logger {
  debug?(msg: string, fields?: Record<string, unknown>): void;
  info?(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
  error?(msg: string, fields?: Record<string, unknown>): void;
}

export interface BackoffOptions {
  /** First retry waits up to this long. */
  baseDelayMs: number;
  /** Upper bound of any single wait. */
  maxDelayMs: number;
}

/**
 * "Full jitter" exponential backoff: uniform in [0, min(max, base * 2^attempt)].
 * Jitter spreads retries of many shards/processes so they do not throttle in lockstep.
 * `attempt` is 0 for the first retry.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const cap = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.min(attempt, 30));
  // Never 0: a zero wait would hammer a throttled endpoint with jitter's unlucky draws.
  return Math.max(1, Math.floor(random() * cap));
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export type ErrorClass = 'throttle' | 'retryable' | 'expired-iterator' | 'fatal';

/**
 * Throttling names the SDK's own classification does not know (service-specific ones);
 * everything else it classifies (status codes, throttling and transient error codes,
 * Node's network error codes, clock skew).
 */
const EXTRA_THROTTLE_NAMES = new Set(['KMSThrottlingException', 'ThrottledException']);
const EXTRA_RETRYABLE_NAMES = new Set(['InternalFailure', 'InternalFailureException', 'InternalError', 'InternalErrorException', 'ServiceUnavailableException', 'KMSInternalException']);

/** Network errors seen on sockets that the SDK's list (ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT) leaves out. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_SESSION_ERROR',
]);

interface SdkLikeError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/** The AWS error name (`__type`/code), or the JS error name. */
export function errorName(err: unknown): string {
  const e = err as SdkLikeError | undefined;
  return e?.name ?? e?.code ?? 'Error';
}

/** Decides what a failed AWS call means for a retry loop: the SDK's classification first. */
export function classifyError(err: unknown): ErrorClass {
  const e = (err ?? {}) as SdkLikeError;
  const name = e.name ?? '';
  if (name === 'ExpiredIteratorException') return 'expired-iterator';
  const sdk = e as Parameters<typeof isThrottlingError>[0];
  if (isThrottlingError(sdk) || EXTRA_THROTTLE_NAMES.has(name)) return 'throttle';
  const status = e.$metadata?.httpStatusCode;
  if (isTransientError(sdk) || isServerError(sdk) || EXTRA_RETRYABLE_NAMES.has(name)) return 'retryable';
  if (status !== undefined && status >= 500) return 'retryable';
  if (e.code !== undefined && NETWORK_CODES.has(e.code)) return 'retryable';
  if (NETWORK_CODES.has(name)) return 'retryable';
  // No HTTP status at all means the request never got an answer (socket error, timeout).
  if (status === undefined && e.$metadata !== undefined) return 'retryable';
  if (e.$metadata === undefined && err instanceof Error && !('$fault' in err) && isNetworkishMessage(err.message)) {
    return 'retryable';
  }
  return 'fatal';
}

function isNetworkishMessage(msg: string): boolean {
  return /socket hang up|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|network|timed? ?out/i.test(msg);
}

const CONTEXT = Symbol.for('rcf-stream.errorContext');

/**
 * Marks `err` with the call it came from (e.g. `S3 PutObject s3://b/k`), which
 * errorMessage puts in front. The error itself (name, $metadata) is unchanged,
 * so classifyError still sees what the SDK saw. Returns `err` for `throw`.
 */
export function inAwsCall(err: unknown, context: string): unknown {
  if (typeof err === 'object' && err !== null && !(CONTEXT in err)) Object.defineProperty(err, CONTEXT, { value: context });
  return err;
}

/**
 * Message of an unknown thrown value, for error texts. An SDK error without
 * details (an empty 503 body gives name "Unknown", message "UnknownError")
 * is described by its HTTP status instead. A project error (isRcfStreamError) gives its
 * message alone: it is written for people, its class name means nothing to them; other
 * errors keep their name (`ThrottlingException: Rate exceeded`).
 */
export function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const context = (err as { [CONTEXT]?: string })[CONTEXT];
  const prefix = context !== undefined ? `${context}: ` : '';
  const status = (err as SdkLikeError).$metadata?.httpStatusCode;
  if (status !== undefined && (err.name === 'Unknown' || err.message === 'UnknownError' || err.message === '')) {
    return `${prefix}HTTP ${status}${STATUS_CODES[status] !== undefined ? ` ${STATUS_CODES[status]}` : ''} without error details in the response`;
  }
  return isRcfStreamError(err) ? `${prefix}${err.message}` : `${prefix}${errorName(err)}: ${err.message}`;
}
