/**
 * A checkpoint belongs to one input stream and one running service: pointing
 * stream B at stream A's checkpoint is refused instead of skipping B's records
 * with A's positions, and a second service on a file checkpoint in use is refused.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { FileCheckpointStore } from '../../src/checkpoint/file-store.js';
import { createStream, putRaw, runToEnd, startService, useKinesalite } from './support.js';

const local = useKinesalite('rcf-ckpt-identity-');

const records = (n: number): { data: string; partitionKey: string }[] =>
  Array.from({ length: n }, (_, i) => ({ data: JSON.stringify({ time: i, value: 30 + (i % 7) / 10 }), partitionKey: `p${i % 3}` }));

describe('checkpoint identity (service)', () => {
  it('records the input stream in the checkpoint and refuses it for another stream', async () => {
    await createStream(local.kinesis, 'ident-a', 1);
    await createStream(local.kinesis, 'ident-b', 1);
    await putRaw(local.kinesis, 'ident-a', records(200));
    await putRaw(local.kinesis, 'ident-b', records(300));
    const path = join(local.dir, 'shared.checkpoint');
    const common = ['--kinesis-endpoint', local.kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', `file:${path}`, '--exit-when-idle', '0.5'];

    const a = await runToEnd(['--input-stream', 'ident-a', ...common], 30_000, { stdout: new PassThrough() });
    expect(a.exitCode).toBe(0);
    expect((await new FileCheckpointStore(path).load())!.stream).toBe('ident-a');

    // The service does not start (`run` prints "cannot start: ..." and exits 1).
    await expect(runToEnd(['--input-stream', 'ident-b', ...common], 30_000, { stdout: new PassThrough() })).rejects.toThrow(
      /^Checkpoint at file:.*shared\.checkpoint belongs to stream ident-a, not ident-b/,
    );
    // Stream A's checkpoint is left as it was.
    expect((await new FileCheckpointStore(path).load())!.stream).toBe('ident-a');
  });

  it('a second service on a file checkpoint in use is refused; after the first stops, it runs', async () => {
    await createStream(local.kinesis, 'ident-lock', 1);
    await putRaw(local.kinesis, 'ident-lock', records(100));
    const path = join(local.dir, 'locked.checkpoint');
    const argv = ['--input-stream', 'ident-lock', '--kinesis-endpoint', local.kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', `file:${path}`];
    const first = await startService(argv, { stdout: new PassThrough() });
    await expect(startService(argv, { stdout: new PassThrough() })).rejects.toThrow(/is in use by process \d+@.* \(lock file .*locked\.checkpoint\.lock\)/);
    first.service.stop('test');
    expect((await first.service.done).exitCode).toBe(0);
    const again = await runToEnd([...argv, '--exit-when-idle', '0.5'], 30_000, { stdout: new PassThrough() });
    expect(again.exitCode).toBe(0);
  });
});
