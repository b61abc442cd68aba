import { describe, expect, it } from 'vitest';
import { classifyError } from '../../src/aws/retry.js';

const sdk = (name: string, status: number | undefined, extra: Record<string, unknown> = {}): unknown =>
  Object.assign(new Error(name), { name, $metadata: status === undefined ? {} : { httpStatusCode: status }, ...extra });

describe('classifyError (the SDK classification, plus the names it lacks)', () => {
  it('throttling: by code (Kinesis, DynamoDB, KMS) and by HTTP 429', () => {
    expect(classifyError(sdk('ProvisionedThroughputExceededException', 400))).toBe('throttle');
    expect(classifyError(sdk('LimitExceededException', 400))).toBe('throttle');
    expect(classifyError(sdk('ThrottlingException', 400))).toBe('throttle');
    expect(classifyError(sdk('KMSThrottlingException', 400))).toBe('throttle');
    expect(classifyError(sdk('SomethingElse', 429))).toBe('throttle');
  });

  it('retryable: 5xx, transient codes, sockets without an answer', () => {
    expect(classifyError(sdk('ServiceUnavailable', 503))).toBe('retryable');
    expect(classifyError(sdk('Unknown', 500))).toBe('retryable');
    expect(classifyError(sdk('InternalFailure', 400))).toBe('retryable');
    expect(classifyError(sdk('TimeoutError', undefined))).toBe('retryable');
    expect(classifyError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe('retryable');
    expect(classifyError(Object.assign(new Error('getaddrinfo'), { code: 'EAI_AGAIN' }))).toBe('retryable');
    expect(classifyError(new Error('socket hang up'))).toBe('retryable');
  });

  it('fatal: client errors, and plain programming errors', () => {
    expect(classifyError(sdk('ValidationException', 400))).toBe('fatal');
    expect(classifyError(sdk('ResourceNotFoundException', 400))).toBe('fatal');
    expect(classifyError(sdk('AccessDeniedException', 403))).toBe('fatal');
    expect(classifyError(new TypeError('x is not a function'))).toBe('fatal');
  });

  it('expired iterators are their own class', () => {
    expect(classifyError(sdk('ExpiredIteratorException', 400))).toBe('expired-iterator');
  });
});
