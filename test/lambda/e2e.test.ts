/**
 * The Lambda handler end to end, without AWS: kinesalite for the streams,
 * moto_server for S3 (state), SNS and SQS (a queue subscribed to the topic).
 * test/support/esm-driver.ts plays the event source mapping and invokes the
 * BUILT handler (dist/src/lambda/handler.js, or the deployable esbuild bundle
 * of infra/bundle.ts) in child processes acting as
 * containers: replaced now and then (cold starts), SIGKILLed mid-batch, and
 * doubled by a concurrent duplicate invocation of the same batch.
 *
 * Every run is checked against `rcf-stream detect` fed each shard's records in
 * order with the same options: every good record's score, no record missing,
 * duplicates identical, every anomaly's notification at the queue, every bad
 * record on the dead-letter stream with its reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createKinesisClient, createS3Client } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { bundleHandler } from '../../infra/bundle.js';
import { ROOT, requireBuilt, lines, runCli } from '../cli/cli-support.js';
import { ChildContainer, driveShard, readShards, type DriverStats, type Invoker, type ShardRecords } from '../support/esm-driver.js';
import { createStream, localAwsConfig, motoServerUnavailableReason, readWholeStream, startKinesalite, startMotoServer, text, type LocalServer } from '../support/local-aws.js';
import { topicWithQueue, type Delivered } from '../support/sns-sqs.js';
import { putRaw } from '../service/support.js';

const RECORDS = 2400;
const BAD = ['{"time": 3, "value": "warm"}', 'not json at all', '{"time": 9}', '[1, 2, 3]'];
const BUCKET = 'rcf-lambda-state';
const DETECT_OPTIONS = ['--time-field', 'time', '--shingle', '2'];

const motoMissing = motoServerUnavailableReason();
if (motoMissing !== undefined) console.warn(`lambda e2e tests skipped: ${motoMissing}`);

let kinesalite: LocalServer;
let moto: LocalServer;
let kinesis: KinesisClient;
let s3: S3Client;
let sns: SNSClient;
let sqs: SQSClient;
let dir: string;
let inputArn: string;
let shards: ShardRecords[];
/** Per shard: detect's output records for the shard's good records, in order. */
const reference = new Map<string, { recordId: string; score: number; anomaly: boolean }[]>();
const containers = new Set<ChildContainer>();

beforeAll(async () => {
  if (motoMissing !== undefined) return;
  requireBuilt();
  [kinesalite, moto] = await Promise.all([startKinesalite(), startMotoServer()]);
  const local = localAwsConfig({ kinesis: kinesalite.endpoint, s3: moto.endpoint, sns: moto.endpoint });
  kinesis = createKinesisClient(local);
  s3 = createS3Client(local);
  sns = new SNSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  sqs = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  dir = mkdtempSync(join(tmpdir(), 'rcf-lambda-'));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await createStream(kinesis, 'lambda-in', 2);
  inputArn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'lambda-in' }))).StreamDescriptionSummary!.StreamARN!;
  // Random partition keys spread the series over both shards; bad records sit in between.
  const random = mulberry32(5);
  const bodies = [...temperatureRecords({ count: RECORDS, seed: 11 })].map((r) => JSON.stringify(r));
  BAD.forEach((b, i) => bodies.splice(300 + i * 450, 0, b));
  await putRaw(kinesis, 'lambda-in', bodies.map((data) => ({ data, partitionKey: `pk-${Math.floor(random() * 1e9)}` })));
  shards = await readShards(kinesis, 'lambda-in');
  expect(shards.length).toBe(2);
  for (const s of shards) {
    expect(s.records.length).toBeGreaterThan(RECORDS / 4);
    const file = join(dir, `${s.shardId}.ndjson`);
    writeFileSync(file, s.records.map((r) => `${text(r.Data!)}\n`).join(''));
    const res = await runCli(['detect', ...DETECT_OPTIONS, '--dead-letter', join(dir, `${s.shardId}.bad`), file]);
    expect(res.code, res.stderr).toBe(0);
    const good = s.records.filter((r) => !BAD.includes(text(r.Data!)));
    const out = lines(res.stdout).map((l) => JSON.parse(l) as { score: number; anomaly: boolean });
    expect(out.length).toBe(good.length);
    reference.set(
      s.shardId,
      out.map((o, i) => ({ recordId: `${s.shardId}:${good[i]!.SequenceNumber!}`, score: o.score, anomaly: o.anomaly })),
    );
  }
}, 120_000);

afterAll(async () => {
  for (const c of containers) c.kill();
  kinesis?.destroy();
  s3?.destroy();
  sns?.destroy();
  sqs?.destroy();
  await Promise.all([kinesalite?.stop(), moto?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Scenario {
  name: string;
  batchSize: number;
  /** A new container every this many invocations. */
  coldStartEvery: number;
  /** Invocation numbers whose container SIGKILLs itself as the handler starts this HTTP request (1 = its first). */
  kills?: Map<number, number>;
  /** Invocation numbers that get a concurrent duplicate in a second container. */
  duplicates?: Set<number>;
  /** Run the deployable bundle instead of dist/. */
  bundle?: boolean;
}

interface Outcome {
  stats: DriverStats;
  killedMidBatch: number;
  output: { recordId: string; score: number; anomaly: boolean; raw: string }[];
  deadLetters: { recordId: string; reason: string; input?: string }[];
  notifications: Delivered[];
}

async function runScenario(s: Scenario): Promise<Outcome> {
  const out = `${s.name}-out`;
  const dlq = `${s.name}-dlq`;
  await Promise.all([createStream(kinesis, out, 1), createStream(kinesis, dlq, 1)]);
  const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, `${s.name}-topic`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ENDPOINT_URL_KINESIS: kinesalite.endpoint,
    RCF_CHECKPOINT: `s3:${BUCKET}/${s.name}`,
    RCF_OUTPUT_STREAM: out,
    RCF_DEAD_LETTER_STREAM: dlq,
    RCF_SNS_TOPIC_ARN: topicArn,
    RCF_SNS_RATE: '1000000',
    RCF_EMIT: 'all',
    RCF_TIME_FIELD: 'time',
    RCF_SHINGLE: '2',
    RCF_LOG_LEVEL: 'warn',
  };
  if (s.bundle) env['LAMBDA_HANDLER_MODULE'] = join(bundleHandler(join(dir, 'bundle')), 'index.mjs');
  const start = (): ChildContainer => {
    const c = new ChildContainer(ROOT, env);
    containers.add(c);
    return c;
  };
  let current = start();
  let killedMidBatch = 0;
  /** Containers armed to kill themselves mid-batch (see ChildContainer.killAtRequest). */
  const armed = new Set<ChildContainer>();
  let conflicts = 0;
  const countConflicts = (c: ChildContainer): void => {
    conflicts += c.stderr().split('"msg":"state conflict').length - 1;
  };
  const duplicates: Promise<unknown>[] = [];
  const stats: DriverStats = { invocations: 0, functionErrors: 0, partialFailures: 0, bisections: 0 };
  const invoker = async (n: number): Promise<Invoker> => {
    if (current.exited || (n > 0 && n % s.coldStartEvery === 0)) {
      await current.close();
      countConflicts(current);
      containers.delete(current);
      current = start();
    }
    return current;
  };
  try {
    for (const shard of shards) {
      await driveShard(
        shard,
        {
          streamArn: inputArn,
          batchSize: s.batchSize,
          bisect: true,
          invoker,
          beforeInvoke: async (n, event, inv) => {
            const c = inv as ChildContainer;
            await c.ready;
            const at = s.kills?.get(n);
            if (at !== undefined) {
              c.killAtRequest(at);
              armed.add(c);
            }
            if (s.duplicates?.has(n)) {
              // A container already up, so both invocations race for the same stored state.
              const twin = start();
              await twin.ready;
              duplicates.push(
                twin
                  .invoke(event)
                  .catch(() => undefined)
                  .finally(() =>
                    twin.close().then(() => {
                      countConflicts(twin);
                      containers.delete(twin);
                    }),
                  ),
              );
            }
          },
        },
        stats,
      );
    }
    await Promise.all(duplicates);
  } finally {
    await current.close();
    countConflicts(current);
    containers.delete(current);
  }
  killedMidBatch = [...armed].filter((c) => c.diedMidInvocation).length;
  // Informational: whether the duplicates raced into the conditional write (timing decides).
  console.log(`${s.name}: ${stats.invocations} invocations, ${stats.functionErrors} function errors, ${stats.partialFailures} partial failures, ${killedMidBatch} kills mid-batch, ${conflicts} state conflicts`);

  const output = (await readWholeStream(kinesis, out)).map((r) => {
    const raw = text(r.data);
    const o = JSON.parse(raw) as { recordId: string; score: number; anomaly: boolean };
    return { recordId: o.recordId, score: o.score, anomaly: o.anomaly, raw };
  });
  const deadLetters = (await readWholeStream(kinesis, dlq)).map((r) => JSON.parse(text(r.data)) as { recordId: string; reason: string; input?: string });
  const anomalyIds = new Set(output.filter((o) => o.anomaly).map((o) => o.recordId));
  const notifications = await drainUntil(queueUrl, (got) => [...anomalyIds].every((id) => got.has(id)));
  return { stats, killedMidBatch, output, deadLetters, notifications };
}

/** Receives SNS envelopes from the queue until `done(anomalyIds seen)`; gives up after 20 s. */
async function drainUntil(queueUrl: string, done: (seen: Set<string>) => boolean): Promise<Delivered[]> {
  const got: Delivered[] = [];
  const seen = new Set<string>();
  const deadline = Date.now() + 20_000;
  while (!done(seen) && Date.now() < deadline) {
    const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    for (const m of res.Messages ?? []) {
      const d = JSON.parse(m.Body!) as Delivered;
      got.push(d);
      const id = d.MessageAttributes?.['AnomalyId']?.Value;
      if (id !== undefined) seen.add(id);
    }
    if (res.Messages?.length) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: res.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    } else await new Promise((r) => setTimeout(r, 100));
  }
  return got;
}

function check(o: Outcome): void {
  // Duplicates (at-least-once) are byte-identical to the first delivery.
  const byId = new Map<string, string>();
  for (const r of o.output) {
    const seen = byId.get(r.recordId);
    if (seen !== undefined) expect(r.raw, `duplicate of ${r.recordId}`).toBe(seen);
    else byId.set(r.recordId, r.raw);
  }
  // Every good record, with detect's score, per shard.
  let expected = 0;
  for (const [shardId, ref] of reference) {
    expected += ref.length;
    const got = ref.map((r) => {
      const raw = byId.get(r.recordId);
      expect(raw, `output for ${r.recordId}`).toBeDefined();
      const rec = JSON.parse(raw!) as { score: number; anomaly: boolean };
      return { recordId: r.recordId, score: rec.score, anomaly: rec.anomaly };
    });
    expect(got, `scores of ${shardId}`).toEqual(ref);
  }
  expect(byId.size).toBe(expected);
  // Every anomaly notified (at least once), in the reference format.
  const anomalies = [...reference.values()].flat().filter((r) => r.anomaly);
  expect(anomalies.length).toBeGreaterThan(0);
  const notified = new Map(o.notifications.map((d) => [d.MessageAttributes?.['AnomalyId']?.Value, d]));
  for (const a of anomalies) {
    const d = notified.get(a.recordId);
    expect(d, `notification of ${a.recordId}`).toBeDefined();
    expect(d!.Message).toMatch(/^Anomaly detected: Time=\d+, Value=-?\d+\.\d{6}, Score=\d+\.\d{6}$/);
  }
  // Every bad record dead-lettered with its reason (possibly more than once).
  const letters = new Map(o.deadLetters.map((d) => [d.input, d]));
  for (const b of BAD) {
    const d = letters.get(b);
    expect(d, `dead letter of ${b}`).toBeDefined();
    expect(d!.reason.length).toBeGreaterThan(0);
    expect(d!.recordId).toMatch(/^shardId-\d+:\d+$/);
  }
  expect(new Set(o.deadLetters.map((d) => d.input)).size).toBe(BAD.length);
}

describe.skipIf(motoMissing !== undefined)('Lambda handler under a simulated event source mapping', () => {
  it('gives every record of each shard the score detect gives it, across batch sizes and cold starts (deployable bundle)', async () => {
    const o = await runScenario({ name: 'plain', batchSize: 150, coldStartEvery: 5, bundle: true });
    expect(o.stats.functionErrors).toBe(0);
    expect(o.stats.partialFailures).toBe(0);
    check(o);
    // Without faults nothing is delivered twice.
    expect(o.output.length).toBe(new Set(o.output.map((r) => r.recordId)).size);
  }, 240_000);

  it('loses nothing and changes no score when containers are SIGKILLed mid-batch and batches run twice at once', async () => {
    const o = await runScenario({
      name: 'faults',
      batchSize: 600,
      coldStartEvery: 1000,
      // Before the state is read, and between the handler's later requests (every batch
      // makes at least three: the state read, the output PutRecords, the state save).
      kills: new Map([
        [1, 1],
        [3, 2],
        [6, 3],
        [9, 2],
      ]),
      duplicates: new Set([2, 5, 8]),
    });
    expect(o.killedMidBatch).toBeGreaterThan(0);
    expect(o.stats.functionErrors).toBeGreaterThanOrEqual(o.killedMidBatch);
    check(o);
  }, 300_000);
});
