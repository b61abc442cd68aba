/**
 * The one error base: every project error is an RcfStreamError (OptionError a RangeError
 * with the same `code`), keeps its own class for instanceof and its name, and has a stable code.
 */
import { describe, expect, it } from 'vitest';
import { RcfStreamError, isRcfStreamError } from '../../src/util/errors.js';
import { OptionError } from '../../src/util/option-error.js';
import { UsageError } from '../../src/util/option-args.js';
import { BinaryFormatError } from '../../src/util/binary.js';
import { KplFormatError } from '../../src/aws/kpl.js';
import { KinesisSinkError } from '../../src/aws/kinesis-sink.js';
import { KinesisSourceError } from '../../src/aws/kinesis-source.js';
import { StateConflictError } from '../../src/lambda/shard-state.js';
import { LambdaConfigError } from '../../src/lambda/config.js';
import { FormatError } from '../../src/pipeline/formatter.js';
import { ModelMismatchError, ModelSnapshotCorruptError } from '../../src/pipeline/models.js';
import { ModelScopeError } from '../../src/pipeline/scoped-models.js';
import { SinkError } from '../../src/pipeline/sinks.js';
import { CheckpointLockedError } from '../../src/checkpoint/file-store.js';
import { CheckpointConflictError, CheckpointCorruptError, CheckpointStreamMismatchError } from '../../src/checkpoint/checkpoint-store.js';
import { SnapshotError } from '../../src/forest/snapshot.js';
import { ModelStateError } from '../../src/forest/model-state.js';
import * as barrel from '../../src/index.js';

describe('RcfStreamError', () => {
  // [error, class, name, code]: the codes are API, so they are spelled out here, not read from the classes.
  const cases: [Error, Function, string, string][] = [
    [new BinaryFormatError('truncated'), BinaryFormatError, 'BinaryFormatError', 'BINARY_FORMAT'],
    [new UsageError('--x: unknown option'), UsageError, 'UsageError', 'USAGE'],
    [new KplFormatError('MD5 digest mismatch'), KplFormatError, 'KplFormatError', 'KPL_FORMAT'],
    [new KinesisSinkError('PutRecords failed', 3), KinesisSinkError, 'KinesisSinkError', 'KINESIS_SINK_FAILED'],
    [new KinesisSourceError('GetRecords failed'), KinesisSourceError, 'KinesisSourceError', 'KINESIS_SOURCE_FAILED'],
    [new StateConflictError('changed since read'), StateConflictError, 'StateConflictError', 'STATE_CONFLICT'],
    [new LambdaConfigError('RCF_X is required'), LambdaConfigError, 'LambdaConfigError', 'LAMBDA_CONFIG'],
    [new FormatError('too deep', 'unserialisable'), FormatError, 'FormatError', 'OUTPUT_FORMAT'],
    [new ModelMismatchError('trees differ.', 'Reset.'), ModelMismatchError, 'ModelMismatchError', 'MODEL_MISMATCH'],
    [new ModelSnapshotCorruptError('bad header'), ModelSnapshotCorruptError, 'ModelSnapshotCorruptError', 'MODELS_CORRUPT'],
    [new ModelScopeError('two shards'), ModelScopeError, 'ModelScopeError', 'MODEL_SCOPE'],
    [new SinkError('output stream', 'gave up'), SinkError, 'SinkError', 'SINK_FAILED'],
    [new CheckpointLockedError('c.ckpt.lock', '42'), CheckpointLockedError, 'CheckpointLockedError', 'CHECKPOINT_LOCKED'],
    [new CheckpointCorruptError('c.ckpt', 'checksum mismatch'), CheckpointCorruptError, 'CheckpointCorruptError', 'CHECKPOINT_CORRUPT'],
    [new CheckpointConflictError('another writer'), CheckpointConflictError, 'CheckpointConflictError', 'CHECKPOINT_CONFLICT'],
    [new CheckpointStreamMismatchError('c.ckpt', 'a', 'b'), CheckpointStreamMismatchError, 'CheckpointStreamMismatchError', 'CHECKPOINT_STREAM_MISMATCH'],
    [new SnapshotError('not a snapshot'), SnapshotError, 'SnapshotError', 'SNAPSHOT_INVALID'],
    [new ModelStateError('invalid model state: truncated'), ModelStateError, 'ModelStateError', 'MODEL_STATE_INVALID'],
  ];

  it.each(cases)('%s: an RcfStreamError with its own class, name and code', (error, cls, name, code) => {
    expect(error).toBeInstanceOf(RcfStreamError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(cls);
    expect(error.name).toBe(name);
    expect((error as RcfStreamError).code).toBe(code);
    expect(isRcfStreamError(error)).toBe(true);
  });

  it('keeps messages and extra fields as they were', () => {
    expect(new ModelMismatchError('trees differ.', 'Reset.').message).toBe('trees differ. Reset.');
    expect(new SinkError('output stream', 'gave up').message).toBe('output stream: gave up');
    const cause = new Error('socket hang up');
    const sink = new KinesisSinkError('PutRecords failed', 3, cause);
    expect([sink.failedEntries, sink.cause]).toEqual([3, cause]);
    expect(new SnapshotError('x', { cause }).cause).toBe(cause);
    // StateConflictError is still caught as a checkpoint conflict.
    expect(new StateConflictError('changed')).toBeInstanceOf(CheckpointConflictError);
  });

  it('leaves OptionError a RangeError (the forest API documents it) with the same code field', () => {
    const e = new OptionError('numberOfTrees', 'must be between 1 and 1000');
    expect(e).toBeInstanceOf(RangeError);
    expect(e).not.toBeInstanceOf(RcfStreamError);
    expect([e.name, e.code, e.message]).toEqual(['OptionError', 'BAD_OPTION', 'numberOfTrees: must be between 1 and 1000']);
    expect(isRcfStreamError(e)).toBe(true);
  });

  it('does not count other errors as its own', () => {
    expect(isRcfStreamError(new Error('boom'))).toBe(false);
    expect(isRcfStreamError(new RangeError('Invalid array length'))).toBe(false);
    expect(isRcfStreamError(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', code: 'ThrottlingException' }))).toBe(false);
    expect(isRcfStreamError({ name: 'SnapshotError', code: 'SNAPSHOT_INVALID', message: 'x' })).toBe(false);
    expect(isRcfStreamError('SnapshotError')).toBe(false);
  });

  it('is exported from the package next to SnapshotError', async () => {
    expect(barrel.RcfStreamError).toBe(RcfStreamError);
    expect(barrel.isRcfStreamError).toBe(isRcfStreamError);
    const error = await barrel.restoreForest(new Uint8Array(8)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(barrel.SnapshotError);
    expect(error).toBeInstanceOf(barrel.RcfStreamError);
    expect((error as barrel.RcfStreamError).code).toBe('SNAPSHOT_INVALID');
  });
});
