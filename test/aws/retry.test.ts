import { describe, expect, it } from 'vitest';
import { backoffDelay, classifyError, errorMessage, inAwsCall } from '../../src/aws/retry.js';
import { ModelMismatchError } from '../../src/pipeline/models.js';
import { CheckpointCorruptError } from '../../src/checkpoint/checkpoint-store.js';
import { OptionError } from '../../src/util/option-error.js';

/** An error shaped like the SDK's: name, optional code and HTTP status. */
function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  const e = Object.assign(new Error(`${name} happened`), { name, ...extra });
  if (status !== undefined) Object.assign(e, { $metadata: { httpStatusCode: status } });
  return e;
}

describe('classifyError', () => {
  it('knows an expired iterator', () => {
    expect(classifyError(sdkError('ExpiredIteratorException', 400))).toBe('expired-iterator');
  });

  it.each(['ProvisionedThroughputExceededException', 'LimitExceededException', 'ThrottlingException', 'TooManyRequestsException'])(
    'throttle by name: %s',
    (name) => {
      expect(classifyError(sdkError(name, 400))).toBe('throttle');
    },
  );

  it('throttle by HTTP 429 whatever the name', () => {
    expect(classifyError(sdkError('SomethingElse', 429))).toBe('throttle');
  });

  it('retries 5xx, named internal errors, timeouts and network failures', () => {
    expect(classifyError(sdkError('Unknown', 503))).toBe('retryable');
    expect(classifyError(sdkError('WhateverError', 500))).toBe('retryable');
    expect(classifyError(sdkError('InternalFailure'))).toBe('retryable');
    expect(classifyError(sdkError('TimeoutError'))).toBe('retryable');
    expect(classifyError(sdkError('Error', undefined, { code: 'ECONNRESET' }))).toBe('retryable');
    expect(classifyError(sdkError('ECONNREFUSED'))).toBe('retryable');
    // SDK metadata without a status: no answer came back at all.
    expect(classifyError(Object.assign(new Error('x'), { $metadata: {} }))).toBe('retryable');
    expect(classifyError(new Error('socket hang up'))).toBe('retryable');
  });

  it('gives up on client errors and unknown values', () => {
    expect(classifyError(sdkError('ResourceNotFoundException', 400))).toBe('fatal');
    expect(classifyError(sdkError('AccessDeniedException', 403))).toBe('fatal');
    expect(classifyError(sdkError('ValidationException', 400))).toBe('fatal');
    expect(classifyError(new TypeError('bad argument'))).toBe('fatal');
    expect(classifyError(undefined)).toBe('fatal');
    expect(classifyError('a string')).toBe('fatal');
    // A server-side fault flag alone does not make a 4xx retryable.
    expect(classifyError(sdkError('InvalidArgumentException', 400, { $fault: 'client' }))).toBe('fatal');
  });
});

describe('backoffDelay (full jitter)', () => {
  const opts = { baseDelayMs: 100, maxDelayMs: 5_000 };

  it('doubles the cap per attempt up to the maximum', () => {
    const top = (attempt: number): number => backoffDelay(attempt, opts, () => 0.999999);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(top)).toEqual([99, 199, 399, 799, 1599, 3199, 4999, 4999]);
  });

  it('spreads uniformly below the cap, and never waits 0 ms', () => {
    expect(backoffDelay(2, opts, () => 0.5)).toBe(200);
    expect(backoffDelay(2, opts, () => 0.25)).toBe(100);
    expect(backoffDelay(0, opts, () => 0)).toBe(1);
    expect(backoffDelay(10, opts, () => 0)).toBe(1);
  });

  it('stays finite for huge attempt numbers', () => {
    expect(backoffDelay(10_000, opts, () => 0.999999)).toBe(4999);
  });

  it('uses Math.random by default, within bounds', () => {
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, opts);
      expect(d).toBeGreaterThanOrEqual(1);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});

describe('errorMessage', () => {
  it('is the name and message, or the status when the SDK had no details', () => {
    expect(errorMessage(sdkError('ResourceNotFoundException', 400))).toBe('ResourceNotFoundException: ResourceNotFoundException happened');
    expect(errorMessage(Object.assign(new Error('UnknownError'), { name: 'Unknown', $metadata: { httpStatusCode: 503 } }))).toBe(
      'HTTP 503 Service Unavailable without error details in the response',
    );
    expect(errorMessage(inAwsCall(Object.assign(new Error('UnknownError'), { name: 'Unknown', $metadata: { httpStatusCode: 599 } }), 'S3 PutObject s3://b/k'))).toBe(
      'S3 PutObject s3://b/k: HTTP 599 without error details in the response',
    );
    expect(errorMessage('plain')).toBe('plain');
  });

  it('gives a project error its message alone, and keeps the name of SDK and plain errors', () => {
    // What `run` printed before: "cannot start: ModelMismatchError: the checkpoint's models ...".
    const mismatch = new ModelMismatchError("the checkpoint's models were trained with other detection settings (--trees: saved 50, now 20).", 'Run with the same settings.');
    expect(errorMessage(mismatch)).toBe("the checkpoint's models were trained with other detection settings (--trees: saved 50, now 20). Run with the same settings.");
    expect(errorMessage(new CheckpointCorruptError('c.ckpt', 'checksum mismatch'))).toMatch(/^Checkpoint at c\.ckpt is corrupt: checksum mismatch\./);
    // OptionError stays a RangeError but is a project error all the same.
    expect(errorMessage(new OptionError('numberOfTrees', 'must be between 1 and 1000'))).toBe('numberOfTrees: must be between 1 and 1000');
    expect(errorMessage(inAwsCall(new ModelMismatchError('models differ.', 'Reset them.'), 'S3 GetObject s3://b/k'))).toBe('S3 GetObject s3://b/k: models differ. Reset them.');
    expect(errorMessage(sdkError('ThrottlingException', 400, { message: 'Rate exceeded' }))).toBe('ThrottlingException: Rate exceeded');
    expect(errorMessage(new RangeError('Invalid array length'))).toBe('RangeError: Invalid array length');
    expect(errorMessage(new Error('boom'))).toBe('Error: boom');
  });
});
