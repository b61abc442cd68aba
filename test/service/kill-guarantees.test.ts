/**
 * What survives SIGKILL: the built service (node dist/src/cli/main.js run) reads an
 * unkeyed 2-shard stream written with random partition keys, is killed 3 times at seeded
 * points and restarted from its file checkpoint each time. Checked against kinesalite and
 * moto_server (SNS with a subscribed SQS queue):
 * - every anomaly on the output stream has its notification at the queue (0 missing;
 *   duplicates allowed, and identical);
 * - the score of every recordId equals that of two uninterrupted runs, which equal each
 *   other (--model-scope shard: a score depends on its shard's order only, never on
 *   which shard's batch arrived first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SNSClient } from '@aws-sdk/client-sns';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createKinesisClient, createSnsClient } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { MAIN, ROOT, requireBuilt } from '../cli/cli-support.js';
import { receiveAll, topicWithQueue, type Delivered } from '../support/sns-sqs.js';
import { createStream, localAwsConfig, motoServerUnavailableReason, putRaw, readOutput, startKinesalite, startMotoServer, type LocalServer, type OutputRecord } from './support.js';

const RECORDS = 6000;
const KILLS = 3;
const skipReason = motoServerUnavailableReason();
if (skipReason) console.warn(`[skip] SIGKILL notification test: ${skipReason}`);

let kinesalite: LocalServer;
let moto: LocalServer | undefined;
let kinesis: KinesisClient;
let sns: SNSClient;
let sqs: SQSClient;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  if (skipReason) return;
  requireBuilt();
  kinesalite = await startKinesalite();
  moto = await startMotoServer();
  kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  sns = createSnsClient(localAwsConfig({ sns: moto.endpoint }));
  sqs = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: new NodeHttpHandler() });
  dir = mkdtempSync(join(tmpdir(), 'rcf-kill-'));
  await createStream(kinesis, 'kill-in', 2);
  const random = mulberry32(77);
  const records = [...temperatureRecords({ count: RECORDS, seed: 31 })];
  // Random partition keys: consecutive records land on either shard.
  await putRaw(kinesis, 'kill-in', records.map((r) => ({ data: JSON.stringify(r), partitionKey: `pk-${Math.floor(random() * 1e9)}` })));
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  kinesis?.destroy();
  sns?.destroy();
  sqs?.destroy();
  await kinesalite?.stop();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Stats {
  type: string;
  outputRecords: number;
  checkpoints: { saved: number; restoredModels: boolean };
}

interface Run {
  child: ChildProcess;
  stats(): Stats | undefined;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startRun(output: string, checkpoint: string, extra: string[]): Run {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
  const args = [
    MAIN, 'run', '--input-stream', 'kill-in', '--output-stream', output, '--kinesis-endpoint', kinesalite.endpoint,
    '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--time-field', 'time', '--sample-size', '64', '--trees', '30',
    '--checkpoint', `file:${join(dir, checkpoint)}`, '--checkpoint-records', '300', '--checkpoint-interval', '0.2',
    '--get-records-limit', '200', '--poll-interval-ms', '200', '--idle-poll-ms', '200', '--exit-when-idle', '0.6',
    '--stats-interval', '0.05', '--stats-json', ...extra,
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  let latest: Stats | undefined;
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
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stats: () => latest, stderr: () => err, exit };
}

async function finish(run: Run, timeoutMs = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([run.exit, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  if (result === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`service did not exit within ${timeoutMs} ms:\n${run.stderr().slice(-2000)}`);
  }
  expect(result, run.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
}

/** Starts a run and SIGKILLs it once it has written `killAt` output records and saved a checkpoint. */
async function killAt(run: Run, at: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      const s = run.stats();
      if (s !== undefined && s.outputRecords >= at && s.checkpoints.saved >= 1) {
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

async function scoresOf(stream: string): Promise<Map<string, OutputRecord>> {
  const out = new Map<string, OutputRecord>();
  for (const o of await readOutput(kinesis, stream)) {
    const seen = out.get(o.recordId);
    // A duplicate replayed after a restart carries exactly its first score.
    if (seen !== undefined) expect([o.score, o.anomaly]).toEqual([seen.score, seen.anomaly]);
    out.set(o.recordId, o);
  }
  return out;
}

describe.skipIf(skipReason !== undefined)('SIGKILL x3 on an unkeyed 2-shard stream with random partition keys', () => {
  it('gives every recordId the score of two uninterrupted runs, and every anomaly its notification', async () => {
    const reference: Map<string, OutputRecord>[] = [];
    for (const name of ['kill-ref-a', 'kill-ref-b']) {
      await createStream(kinesis, name, 1);
      await finish(startRun(name, `${name}.ckpt`, []));
      reference.push(await scoresOf(name));
    }
    const [a, b] = reference as [Map<string, OutputRecord>, Map<string, OutputRecord>];
    expect(a.size).toBe(RECORDS);
    expect([...a].filter(([id, o]) => b.get(id)?.score !== o.score)).toEqual([]);

    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'kill-anomalies');
    await createStream(kinesis, 'kill-out', 1);
    const withSns = ['--sns-topic-arn', topicArn, '--sns-endpoint', moto!.endpoint, '--sns-rate', '100000'];
    const random = mulberry32(4242);
    for (let k = 0; k < KILLS; k++) {
      // Counted by each run from its own start (after the restart's replay).
      const at = 600 + Math.floor(random() * 900);
      await killAt(startRun('kill-out', 'kill.ckpt', withSns), at);
    }
    await finish(startRun('kill-out', 'kill.ckpt', withSns));

    const killed = await scoresOf('kill-out');
    expect(killed.size).toBe(RECORDS);
    const differ = [...killed].filter(([id, o]) => a.get(id)?.score !== o.score || a.get(id)?.anomaly !== o.anomaly);
    expect(differ).toEqual([]);

    const anomalies = [...killed.values()].filter((o) => o.anomaly).map((o) => o.recordId);
    expect(anomalies.length).toBeGreaterThan(10);
    // At least as many as anomalies (duplicates allowed), then whatever else is queued.
    const delivered: Delivered[] = await receiveAll(sqs, queueUrl, anomalies.length, 30_000);
    for (;;) {
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!res.Messages?.length) break;
      for (const m of res.Messages) delivered.push(JSON.parse(m.Body!) as Delivered);
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: res.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
    const byId = new Map<string, Delivered[]>();
    for (const d of delivered) {
      const id = d.MessageAttributes?.['AnomalyId']?.Value;
      expect(id).toBeDefined();
      byId.set(id!, [...(byId.get(id!) ?? []), d]);
    }
    const missing = anomalies.filter((id) => !byId.has(id));
    expect(missing).toEqual([]);
    for (const copies of byId.values()) for (const c of copies) expect(c.Message).toBe(copies[0]!.Message);
    console.log(`[kill] ${anomalies.length} anomalies, ${delivered.length} notifications (${delivered.length - byId.size} duplicates), 0 missing; ${RECORDS} scores equal to uninterrupted runs`);
  }, 300_000);
});
