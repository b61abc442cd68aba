/**
 * Crash test: the built service (node dist/src/cli/main.js run) is killed with
 * SIGKILL at seeded points and restarted from its file checkpoint. Compared
 * with an uninterrupted run over the same records, no input record may be
 * missing from the scored output, duplicates (records after the checkpoint,
 * scored again) must carry the same record id, and every score — before and
 * after the restart — must equal the uninterrupted run's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { MAIN, ROOT, requireBuilt } from '../cli/cli-support.js';
import { createStream, localAwsConfig, putRaw, readOutput, startKinesalite, type LocalServer, type OutputRecord } from './support.js';

const RECORDS = 4000;
const KILL_POINTS = 3;

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  try {
    requireBuilt();
  } catch (error) {
    throw new Error(`the crash test runs the built CLI; building it failed (npm run build):\n${(error as Error).message}`);
  }
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-crash-'));
  await createStream(kinesis, 'crash-in', 1);
  const records = [...temperatureRecords({ count: RECORDS, seed: 9 })];
  await putRaw(kinesis, 'crash-in', records.map((r) => ({ data: JSON.stringify(r), partitionKey: 'sensor-1' })));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  kinesis?.destroy();
  await kinesalite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Stats {
  type: string;
  outputRecords: number;
  recordsRead: number;
  checkpoints: { saved: number; restoredModels: boolean };
}

interface Run {
  child: ChildProcess;
  /** Latest stats line. */
  stats(): Stats | undefined;
  final(): Stats | undefined;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startRun(output: string, checkpoint: string): Run {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
  const args = [
    MAIN, 'run', '--input-stream', 'crash-in', '--output-stream', output, '--kinesis-endpoint', kinesalite.endpoint,
    '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--time-field', 'time', '--threshold', 'auto', '--shingle', '4',
    '--checkpoint', `file:${join(dir, checkpoint)}`, '--checkpoint-records', '400', '--checkpoint-interval', '0.3',
    '--get-records-limit', '250', '--idle-poll-ms', '200', '--exit-when-idle', '0.6', '--stats-interval', '0.05', '--stats-json',
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  let latest: Stats | undefined;
  let final: Stats | undefined;
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const s = JSON.parse(line) as Stats;
      if (s.type === 'stats') latest = s;
      if (s.type === 'final-stats') final = s;
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stats: () => latest, final: () => final, stderr: () => err, exit };
}

async function finish(run: Run, timeoutMs = 30_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    run.exit,
    new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (result === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`service did not exit within ${timeoutMs} ms:\n${run.stderr()}`);
  }
  expect(result, run.stderr()).toEqual({ code: 0, signal: null });
}

describe('crash and restart (SIGKILL)', () => {
  it(`loses no record and reproduces every score at ${KILL_POINTS} seeded kill points`, async () => {
    await createStream(kinesis, 'crash-ref', 1);
    const reference = startRun('crash-ref', 'ref.ckpt');
    await finish(reference);
    const ref = new Map<string, OutputRecord>();
    for (const o of await readOutput(kinesis, 'crash-ref')) ref.set(o.recordId, o);
    expect(ref.size).toBe(RECORDS);
    expect([...ref.values()].filter((o) => o.anomaly).length).toBeGreaterThan(0);

    const random = mulberry32(20240501);
    for (let k = 0; k < KILL_POINTS; k++) {
      const stream = `crash-out-${k}`;
      await createStream(kinesis, stream, 1);
      // Somewhere after the first checkpoint and before the end.
      const killAt = 500 + Math.floor(random() * (RECORDS - 1500));
      const first = startRun(stream, `kill-${k}.ckpt`);
      let killedAt: Stats | undefined;
      await new Promise<void>((resolve, reject) => {
        const poll = setInterval(() => {
          const s = first.stats();
          if (s !== undefined && s.outputRecords >= killAt && s.checkpoints.saved >= 1) {
            killedAt = s;
            first.child.kill('SIGKILL');
            clearInterval(poll);
            resolve();
          }
        }, 5);
        void first.exit.then(() => {
          clearInterval(poll);
          if (killedAt === undefined) reject(new Error(`the service ended before the kill point ${killAt}:\n${first.stderr()}`));
        });
      });
      expect((await first.exit).signal).toBe('SIGKILL');

      const second = startRun(stream, `kill-${k}.ckpt`);
      await finish(second);
      expect(second.final()?.checkpoints.restoredModels).toBe(true);

      const out = await readOutput(kinesis, stream);
      const seen = new Map<string, number>();
      for (const o of out) {
        const r = ref.get(o.recordId);
        expect(r, `unknown record id ${o.recordId}`).toBeDefined();
        // Same record id, same score, grade and decision as without the crash.
        expect([o.time, o.score, o.grade, o.anomaly]).toEqual([r!.time, r!.score, r!.grade, r!.anomaly]);
        seen.set(o.recordId, (seen.get(o.recordId) ?? 0) + 1);
      }
      const missing = [...ref.keys()].filter((id) => !seen.has(id));
      expect(missing).toEqual([]);
      const duplicates = out.length - seen.size;
      expect(duplicates).toBeLessThanOrEqual(second.final()!.recordsRead);
      console.log(
        `[crash ${k}] killed at ${killedAt!.outputRecords} output records (${killedAt!.checkpoints.saved} checkpoints saved); ` +
          `restart re-read ${second.final()!.recordsRead} records; ${out.length} output records, ${seen.size} distinct, ${duplicates} duplicates, 0 missing, all scores equal`,
      );
    }
  }, 90_000);
});
