/**
 * `rcf-stream run` as a command: help, option errors, configuration from the
 * environment and a JSON file, output to stdout, a failing stream, and the
 * graceful stop on SIGTERM (subprocesses of the built CLI, against kinesalite).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { FileCheckpointStore } from '../../src/checkpoint/index.js';
import { createStream, testClientConfig, putIds, startKinesalite, waitFor, type LocalServer } from '../support/local-aws.js';
import { MAIN, ROOT, requireBuilt, lines } from './cli-support.js';

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  requireBuilt();
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-run-cli-'));
}, 180_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  kinesis?.destroy();
  await kinesalite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

/** The built CLI with a clean environment: local credentials and only the RCF_* variables given. */
function run(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [MAIN, 'run', ...args], {
    cwd: dir,
    env: { PATH: process.env['PATH'], AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

describe('rcf-stream run (command line)', () => {
  it('prints its help', async () => {
    const p = run(['--help']);
    expect(await p.exit).toBe(0);
    expect(p.stdout()).toMatch(/^Usage: rcf-stream run \[options\]/);
    for (const flag of ['--input-stream', '--checkpoint', '--emit', '--dead-letter-stream', '--sns-topic-arn', '--kinesis-endpoint', '--exit-when-idle']) {
      expect(p.stdout()).toContain(flag);
    }
  });

  it('exits 2 with one line naming the option for bad configuration', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], {}, /--input-stream is required/],
      [['--input-stream', 'in', '--sample-size', '5'], {}, /--sample-size must be between 10 and 4096/],
      [['--input-stream', 'in'], { RCF_EMIT: 'everything' }, /--emit must be "anomalies" or "all"/],
      [['--input-stream', 'in', '--checkpoint', 'dynamodb:only-table'], {}, /dynamodb:TABLE\/APP/],
    ];
    for (const [args, env, message] of cases) {
      const p = run(args, env);
      expect(await p.exit).toBe(2);
      expect(lines(p.stderr()).filter((l) => l.startsWith('rcf-stream run:'))).toEqual([expect.stringMatching(message)]);
    }
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ inputStreamName: 'in', outputStreamNmae: 'out' }));
    const p = run(['--config', 'typo.json']);
    expect(await p.exit).toBe(2);
    expect(p.stderr()).toMatch(/typo\.json: unknown option "outputStreamNmae"/);
  });

  it('exits 1 with the reason when the input stream does not exist', async () => {
    const p = run(['--input-stream', 'no-such-stream', '--kinesis-endpoint', kinesalite.endpoint, '--checkpoint', 'none']);
    expect(await p.exit).toBe(1);
    // The source's KinesisSourceError is shown as its message; the AWS SDK error inside keeps its name.
    expect(p.stderr()).toMatch(/stopped \(ListShards on no-such-stream failed: ResourceNotFoundException: Stream no-such-stream /);
    expect(p.stderr()).not.toContain('KinesisSourceError');
  });

  it('prints a project error as its message, without the class name', async () => {
    await createStream(kinesis, 'cli-corrupt', 1);
    writeFileSync(join(dir, 'corrupt.ckpt'), 'not a checkpoint at all');
    const p = run(['--input-stream', 'cli-corrupt', '--kinesis-endpoint', kinesalite.endpoint, '--checkpoint', 'corrupt.ckpt']);
    expect(await p.exit).toBe(1);
    expect(p.stderr()).toMatch(/^rcf-stream run: cannot start: Checkpoint at \S*corrupt\.ckpt is corrupt: /m);
    expect(p.stderr()).not.toContain('CheckpointCorruptError');
  });

  it('takes its configuration from a JSON file and the environment, and writes results to stdout without an output stream', async () => {
    await createStream(kinesis, 'cli-stdout', 1);
    await putIds(kinesis, 'cli-stdout', ['a', 'b', 'c']);
    const { PutRecordsCommand } = await import('@aws-sdk/client-kinesis');
    await kinesis.send(new PutRecordsCommand({ StreamName: 'cli-stdout', Records: [1.5, 2.5].map((v) => ({ PartitionKey: 'k', Data: Buffer.from(JSON.stringify({ value: v })) })) }));
    writeFileSync(join(dir, 'app.json'), JSON.stringify({ inputStreamName: 'cli-stdout', region: 'us-east-1', startPosition: 'TRIM_HORIZON', emit: 'all', checkpoint: 'none' }));
    const p = run(['--exit-when-idle', '0.5'], { RCF_CONFIG: 'app.json', RCF_KINESIS_ENDPOINT: kinesalite.endpoint, RCF_DEAD_LETTER: 'dead.ndjson' });
    expect(await p.exit).toBe(0);
    const out = lines(p.stdout()).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out.map((o) => o['value'])).toEqual([1.5, 2.5]);
    expect(out[0]).toMatchObject({ score: 0, anomaly: false, recordId: expect.stringMatching(/^shardId-000000000000:\d+$/) });
    // The three {"id"} records have no "value": dead-lettered, not dropped.
    expect(p.stderr()).toMatch(/final: 2 records scored.*3 bad/);
    expect(lines((await import('node:fs')).readFileSync(join(dir, 'dead.ndjson'), 'utf8'))).toHaveLength(3);
    // Never a credential in the logs.
    expect(p.stderr()).not.toContain('local"');
    expect(p.stderr()).toMatch(/credentials=default chain/);
  });

  it('on SIGTERM finishes, saves a checkpoint and exits 0; the restart resumes after it', async () => {
    await createStream(kinesis, 'cli-term', 1);
    await createStream(kinesis, 'cli-term-out', 1);
    const ckpt = join(dir, 'term.ckpt');
    const args = ['--input-stream', 'cli-term', '--output-stream', 'cli-term-out', '--kinesis-endpoint', kinesalite.endpoint, '--fields', 'n',
      '--checkpoint', `file:${ckpt}`, '--emit', 'all', '--idle-poll-ms', '200', '--stats-interval', '0.1', '--stats-json', '--start-position', 'TRIM_HORIZON'];
    const p = run(args);
    // TRIM_HORIZON: records put before the first read are not missed (with LATEST, a stats line
    // could come before the shard iterator on a busy machine, and the records were never read).
    await waitFor(() => /"type":"stats"/.test(p.stderr()), 60_000, 'first stats line');
    const { PutRecordsCommand } = await import('@aws-sdk/client-kinesis');
    const put = (from: number, n: number) =>
      kinesis.send(new PutRecordsCommand({ StreamName: 'cli-term', Records: Array.from({ length: n }, (_, i) => ({ PartitionKey: 'k', Data: Buffer.from(JSON.stringify({ n: from + i })) })) }));
    await put(0, 50);
    await waitFor(() => /"outputRecords":50\b/.test(p.stderr()), 60_000, '50 records out');
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.stderr()).toMatch(/stopping.*"reason":"SIGTERM"/);
    expect(p.stderr()).toMatch(/stopped \(SIGTERM\)/);
    expect(existsSync(ckpt)).toBe(true);
    const cp = await new FileCheckpointStore(ckpt).load();
    expect(cp!.shards['shardId-000000000000']!.sequenceNumber).toMatch(/^\d+$/);
    expect(cp!.models!.byteLength).toBeGreaterThan(0);

    await put(50, 20);
    const again = run([...args, '--exit-when-idle', '0.5']);
    expect(await again.exit).toBe(0);
    const final = lines(again.stderr()).map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : {})).find((s) => s['type'] === 'final-stats')!;
    expect(final).toMatchObject({ recordsRead: 20, outputRecords: 20, checkpoints: expect.objectContaining({ restoredModels: true }) });
  });
});
