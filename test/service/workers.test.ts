/**
 * `run --workers N` (the built service, node dist/src/cli/main.js, against kinesalite): the
 * models of each shard live on one of N worker threads. On a 2-shard stream (the two
 * shards' models land on different workers of 2):
 * - unkeyed and keyed within a shard, --workers 2 gives every recordId the score of --workers 1,
 *   and so does the default (no --workers: one thread per shard, up to the cores);
 * - a run with --workers 2 SIGKILLed after a checkpoint and restarted, with --workers 2 or
 *   with --workers 1 (the checkpoint format is the same), loses no record and gives every
 *   recordId the score of an uninterrupted --workers 1 run;
 * - --workers above 1 is refused with a model scope that spans shards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { MAIN, ROOT, requireBuilt, runCli } from '../cli/cli-support.js';
import { createStream, localAwsConfig, putRaw, readOutput, startKinesalite, type LocalServer, type OutputRecord } from './support.js';

const RECORDS = 4000;

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  requireBuilt();
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-workers-'));
  const random = mulberry32(91);
  const records = [...temperatureRecords({ count: RECORDS, seed: 17 })];
  await createStream(kinesis, 'w-unkeyed', 2);
  await putRaw(kinesis, 'w-unkeyed', records.map((r) => ({ data: JSON.stringify(r), partitionKey: `pk-${Math.floor(random() * 1e9)}` })));
  // Keyed within a shard: the key is the partition key, so each key lives in one shard.
  await createStream(kinesis, 'w-keyed', 2);
  await putRaw(
    kinesis,
    'w-keyed',
    records.map((r, i) => {
      const sensor = `sensor-${(i * 7) % 13}`;
      return { data: JSON.stringify({ ...r, sensor }), partitionKey: sensor };
    }),
  );
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  kinesis?.destroy();
  await kinesalite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  outputRecords(): number;
  checkpointsSaved(): number;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startRun(input: string, output: string, checkpoint: string, extra: string[]): Run {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
  const args = [
    MAIN, 'run', '--input-stream', input, '--output-stream', output, '--kinesis-endpoint', kinesalite.endpoint,
    '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--time-field', 'time', '--sample-size', '64', '--trees', '30',
    '--checkpoint', `file:${join(dir, checkpoint)}`, '--checkpoint-records', '300', '--checkpoint-interval', '0.2',
    '--get-records-limit', '200', '--poll-interval-ms', '200', '--idle-poll-ms', '200', '--exit-when-idle', '0.6',
    '--stats-interval', '0.05', '--stats-json', ...extra,
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  let partial = '';
  let outputs = 0;
  let saved = 0;
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const s = JSON.parse(line) as { type: string; outputRecords: number; checkpoints: { saved: number } };
      if (s.type !== 'stats') continue;
      outputs = s.outputRecords;
      saved = s.checkpoints.saved;
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, outputRecords: () => outputs, checkpointsSaved: () => saved, stderr: () => err, exit };
}

async function finish(run: Run, timeoutMs = 90_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([run.exit, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  if (result === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`service did not exit within ${timeoutMs} ms:\n${run.stderr().slice(-2000)}`);
  }
  expect(result, run.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
}

/** SIGKILLs the run once it has written `at` output records and saved a checkpoint. */
async function killAt(run: Run, at: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (run.outputRecords() >= at && run.checkpointsSaved() >= 1) {
        clearInterval(poll);
        run.child.kill('SIGKILL');
        resolve();
      }
    }, 5);
    void run.exit.then(() => {
      clearInterval(poll);
      reject(new Error(`the service ended before the kill point ${at}:\n${run.stderr().slice(-2000)}`));
    });
  });
  expect((await run.exit).signal).toBe('SIGKILL');
}

/** Score per recordId; a duplicate (replayed after a kill) must carry its first output's score. */
async function scoresOf(stream: string): Promise<Map<string, OutputRecord>> {
  const out = new Map<string, OutputRecord>();
  for (const o of await readOutput(kinesis, stream)) {
    const seen = out.get(o.recordId);
    if (seen !== undefined) expect([o.score, o.anomaly]).toEqual([seen.score, seen.anomaly]);
    out.set(o.recordId, o);
  }
  return out;
}

function differences(a: Map<string, OutputRecord>, b: Map<string, OutputRecord>): string[] {
  return [...a].filter(([id, o]) => b.get(id)?.score !== o.score || b.get(id)?.anomaly !== o.anomaly).map(([id]) => id);
}

let unkeyedReference: Map<string, OutputRecord>;

/** What the default --workers must be on this 2-shard stream: one per shard, up to the cores (src/service/worker-count.ts). */
const DEFAULT_WORKERS = Math.min(availableParallelism(), 8, 2);

describe('run --workers', () => {
  for (const [input, extra, counts] of [
    ['w-unkeyed', [], ['1', '2', 'default']],
    ['w-keyed', ['--key-field', 'sensor'], ['1', '2']],
  ] as const) {
    it(`gives every recordId the score of --workers 1 with ${counts.slice(1).join(' and ')} (${input})`, async () => {
      const runs: Map<string, OutputRecord>[] = [];
      for (const workers of counts) {
        const out = `${input}-out-${workers}`;
        await createStream(kinesis, out, 1);
        const run = startRun(input, out, `${out}.ckpt`, [...extra, ...(workers === 'default' ? [] : ['--workers', workers])]);
        await finish(run);
        if (workers === '2') expect(run.stderr()).toMatch(/"msg":"scoring on worker threads","workers":2,"chosen":"option"/);
        if (workers === 'default') {
          // No --workers: as many threads as shards, up to the cores; one core means this thread.
          if (DEFAULT_WORKERS > 1) expect(run.stderr()).toContain(`"msg":"scoring on worker threads","workers":${DEFAULT_WORKERS},"chosen":"default"`);
          else expect(run.stderr()).not.toMatch(/scoring on worker threads/);
        }
        if (workers === '1') expect(run.stderr()).not.toMatch(/scoring on worker threads/);
        runs.push(await scoresOf(out));
      }
      const [one, ...others] = runs as [Map<string, OutputRecord>, ...Map<string, OutputRecord>[]];
      expect(one.size).toBe(RECORDS);
      expect([...one.values()].some((o) => o.anomaly)).toBe(true);
      for (const other of others) {
        expect(other.size).toBe(RECORDS);
        expect(differences(one, other)).toEqual([]);
      }
      if (input === 'w-unkeyed') unkeyedReference = one;
    }, 240_000);
  }

  for (const restartWorkers of ['2', '1']) {
    it(`loses nothing when SIGKILLed with --workers 2 and restarted with --workers ${restartWorkers}`, async () => {
      expect(unkeyedReference?.size).toBe(RECORDS);
      const out = `w-kill-${restartWorkers}`;
      await createStream(kinesis, out, 1);
      await killAt(startRun('w-unkeyed', out, `${out}.ckpt`, ['--workers', '2']), 1500);
      const restart = startRun('w-unkeyed', out, `${out}.ckpt`, ['--workers', restartWorkers]);
      await finish(restart);
      const killed = await scoresOf(out);
      expect(killed.size).toBe(RECORDS);
      expect(differences(killed, unkeyedReference)).toEqual([]);
    }, 240_000);
  }

  it('refuses --workers above 1 with --model-scope stream or key', async () => {
    for (const scope of [['--model-scope', 'stream'], ['--model-scope', 'key', '--key-field', 'sensor']]) {
      const r = await runCli(['run', '--input-stream', 'w-unkeyed', ...scope, '--workers', '2']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--workers above 1 needs --model-scope shard/);
    }
  });
});
