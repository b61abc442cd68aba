/**
 * Helpers for the service tests: run the service in-process against local
 * servers (or the built one as a child process, where SIGKILL and exit codes are
 * the point), read output streams back, and compute reference scores with a
 * detector fed directly (no Kinesis in between).
 */
import { PassThrough } from 'node:stream';
import { PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { LOCAL_CREDENTIALS } from '../../tools/local-servers.js';
import { loadServiceConfig, type ServiceConfig } from '../../src/service/run-config.js';
import { AnomalyService, type ServiceOptions, type ServiceResult } from '../../src/service/service.js';
import { DetectionBatch } from '../../src/detect/detector.js';
import { createRecordDetector } from '../../src/detect/detector-spec.js';
import { testClientConfig, readWholeStream, startKinesalite, text, type LocalServer } from '../support/local-aws.js';
import { createKinesisClient } from '../../src/aws/clients.js';
import { afterAll, beforeAll, expect } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { MAIN, ROOT } from '../cli/cli-support.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export * from '../support/local-aws.js';

/** Options every in-process test run uses: fast polling, no stats lines, quiet logs. */
export const FAST = ['--poll-interval-ms', '200', '--idle-poll-ms', '200', '--stats-interval', '0', '--log-level', 'warn', '--region', 'us-east-1'];

export async function serviceConfig(argv: string[]): Promise<ServiceConfig> {
  const config = await loadServiceConfig([...FAST, ...argv], { env: {} });
  if (config === undefined) throw new Error('unexpected --help');
  return config;
}

export interface RunningService {
  service: AnomalyService;
  /** Everything the service wrote to stderr so far. */
  stderr(): string;
}

export async function startService(argv: string[], options: ServiceOptions = {}): Promise<RunningService> {
  const config = await serviceConfig(argv);
  let err = '';
  const stderr = new PassThrough();
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const service = await AnomalyService.start(config, {
    stderr,
    awsOverrides: { credentials: { ...LOCAL_CREDENTIALS }, connectionTimeoutMs: 2_000, requestTimeoutMs: 15_000 },
    ...options,
  });
  return { service, stderr: () => err };
}

/** Runs until the service stops by itself (e.g. --exit-when-idle); fails the test after `timeoutMs`. */
export async function runToEnd(argv: string[], timeoutMs = 30_000, options: ServiceOptions = {}): Promise<ServiceResult & { stderr: string }> {
  const { service, stderr } = await startService(argv, options);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      service.stop('test timeout');
      reject(new Error(`service did not stop within ${timeoutMs} ms; stderr:\n${stderr()}`));
    }, timeoutMs);
  });
  try {
    const result = await Promise.race([service.done, timeout]);
    return { ...result, stderr: stderr() };
  } finally {
    clearTimeout(timer);
  }
}

const enc = new TextEncoder();

/**
 * Puts raw record bodies (strings or bytes) with the given partition keys, 500 per call,
 * `inFlight` calls at a time. Kinesis keeps the order of records within a partition key
 * only across calls made one after another, so keep inFlight 1 where that order matters.
 */
export async function putRaw(client: KinesisClient, stream: string, records: { data: string | Uint8Array; partitionKey: string }[], inFlight = 1): Promise<void> {
  let next = 0;
  const putter = async (): Promise<void> => {
    for (let i = next; i < records.length; i = next) {
      next += 500;
      const chunk = records.slice(i, i + 500);
      const res = await client.send(
        new PutRecordsCommand({
          StreamName: stream,
          Records: chunk.map((r) => ({ PartitionKey: r.partitionKey, Data: typeof r.data === 'string' ? enc.encode(r.data) : r.data })),
        }),
      );
      if (res.FailedRecordCount) throw new Error(`setup PutRecords had ${res.FailedRecordCount} failures`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, inFlight) }, putter));
}

export interface OutputRecord {
  recordId: string;
  score: number;
  anomaly: boolean;
  [field: string]: unknown;
}

/** Every output record in the stream, parsed, with the partition key and shard it landed on. */
export async function readOutput(client: KinesisClient, stream: string): Promise<(OutputRecord & { $partitionKey: string; $shardId: string })[]> {
  return (await readWholeStream(client, stream)).map((r) => ({ ...(JSON.parse(text(r.data)) as OutputRecord), $partitionKey: r.partitionKey, $shardId: r.shardId }));
}

/** Reading order of a record id: shard, sequence number (as a big integer), sub-sequence. */
export function idOrder(a: string, b: string): number {
  const [sa, qa, ua] = a.split(':');
  const [sb, qb, ub] = b.split(':');
  if (sa !== sb) return sa! < sb! ? -1 : 1;
  const d = BigInt(qa!) - BigInt(qb!);
  if (d !== 0n) return d < 0n ? -1 : 1;
  return Number(ua ?? -1) - Number(ub ?? -1);
}

export interface Reference {
  score: number;
  grade: number;
  anomaly: boolean;
}

/**
 * Scores `series` (per key, in order) with a detector built from the same
 * options as the service: what an uninterrupted service must output.
 */
export async function referenceScores(argv: string[], series: { key?: string; values: number[] }[]): Promise<Reference[]> {
  const config = await serviceConfig(['--input-stream', 'unused', ...argv]);
  const d = config.detect;
  const detector = await createRecordDetector({
    forest: d.forest,
    threshold: d.threshold,
    attribution: false,
    keyed: d.mapping.keyField !== undefined,
    maxKeys: d.maxKeys,
  });
  try {
    const b = d.mapping.fields.length;
    const batch = new DetectionBatch(1, b);
    const out: Reference[] = [];
    for (const r of series) {
      batch.values.set(r.values);
      batch.keys[0] = r.key ?? '';
      batch.count = 1;
      detector.run(batch);
      out.push({ score: batch.score[0]!, grade: batch.grade[0]!, anomaly: batch.anomaly[0] === 1 });
    }
    return out;
  } finally {
    detector.dispose();
  }
}

/**
 * One kinesalite for a test file, a client for it and a temp folder, started before its tests
 * and stopped (folder removed) after them.
 */
export function useKinesalite(prefix: string): { readonly kinesalite: LocalServer; readonly kinesis: KinesisClient; readonly dir: string } {
  const local = {} as { kinesalite: LocalServer; kinesis: KinesisClient; dir: string };
  beforeAll(async () => {
    local.kinesalite = await startKinesalite();
    local.kinesis = createKinesisClient(testClientConfig({ kinesis: local.kinesalite.endpoint }));
    local.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    local.kinesis?.destroy();
    await local.kinesalite?.stop();
    if (local.dir) rmSync(local.dir, { recursive: true, force: true });
  });
  return local;
}

/**
 * The built service as a child process (node dist/src/cli/main.js run ... --stats-json), for
 * the tests where process behaviour is the point: SIGKILL at a chosen output count, a restart
 * from the checkpoint file, the exit code.
 */

/** The fields of a `--stats-json` line these tests read. */
export interface StatsLine {
  type: string;
  outputRecords: number;
  recordsRead: number;
  checkpoints: { saved: number; restoredModels: boolean };
}

export interface ServiceProcess {
  child: ChildProcess;
  /** The latest periodic stats line. */
  stats(): StatsLine | undefined;
  /** The final-stats line, once written. */
  final(): StatsLine | undefined;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const spawned = new Set<ChildProcess>();

/** `rcf-stream run <args> --stats-json` with local credentials and nothing else from the environment. */
export function spawnService(args: string[]): ServiceProcess {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
  const child = spawn(process.execPath, [MAIN, 'run', ...args, '--stats-json'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  spawned.add(child);
  let err = '';
  let latest: StatsLine | undefined;
  let final: StatsLine | undefined;
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const s = JSON.parse(line) as StatsLine;
      if (s.type === 'stats') latest = s;
      if (s.type === 'final-stats') final = s;
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      spawned.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stats: () => latest, final: () => final, stderr: () => err, exit };
}

/** SIGKILLs every service process a test file started and that is still running (for afterAll). */
export function killSpawnedServices(): void {
  for (const c of spawned) c.kill('SIGKILL');
}

/** Waits for the run to exit by itself and expects exit code 0; SIGKILLs it and fails after `timeoutMs`. */
export async function finishService(run: ServiceProcess, timeoutMs = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([run.exit, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  if (result === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`service did not exit within ${timeoutMs} ms:\n${run.stderr().slice(-2000)}`);
  }
  expect(result, run.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
}

/**
 * SIGKILLs the run once it has written `at` output records (counted from its own start) and
 * saved a checkpoint; fails if it ends first. Returns the stats line it was killed at.
 */
export async function killAt(run: ServiceProcess, at: number): Promise<StatsLine> {
  const killedAt = await new Promise<StatsLine>((resolve, reject) => {
    const poll = setInterval(() => {
      const s = run.stats();
      if (s !== undefined && s.outputRecords >= at && s.checkpoints.saved >= 1) {
        clearInterval(poll);
        run.child.kill('SIGKILL');
        resolve(s);
      }
    }, 5);
    void run.exit.then(() => {
      clearInterval(poll);
      reject(new Error(`the service ended before the kill point ${at}:\n${run.stderr().slice(-2000)}`));
    });
  });
  expect((await run.exit).signal).toBe('SIGKILL');
  return killedAt;
}

/** Output record per recordId; a duplicate (replayed after a kill) must carry its first output's score. */
export async function scoresOf(client: KinesisClient, stream: string): Promise<Map<string, OutputRecord>> {
  const out = new Map<string, OutputRecord>();
  for (const o of await readOutput(client, stream)) {
    const seen = out.get(o.recordId);
    if (seen !== undefined) expect([o.score, o.anomaly]).toEqual([seen.score, seen.anomaly]);
    out.set(o.recordId, o);
  }
  return out;
}
