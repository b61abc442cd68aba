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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SNSClient } from '@aws-sdk/client-sns';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createKinesisClient, createSnsClient } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { requireBuilt } from '../cli/cli-support.js';
import { receiveAll, topicWithQueue, type Delivered } from '../support/sns-sqs.js';
import {
  createStream,
  finishService,
  killAt,
  killSpawnedServices,
  localAwsConfig,
  testClientConfig,
  motoServerUnavailableReason,
  putRaw,
  scoresOf,
  spawnService,
  startKinesalite,
  startMotoServer,
  type LocalServer,
  type OutputRecord,
  type ServiceProcess,
} from './support.js';

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

beforeAll(async () => {
  if (skipReason) return;
  requireBuilt();
  kinesalite = await startKinesalite();
  moto = await startMotoServer();
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
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
  killSpawnedServices();
  kinesis?.destroy();
  sns?.destroy();
  sqs?.destroy();
  await kinesalite?.stop();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startRun(output: string, checkpoint: string, extra: string[]): ServiceProcess {
  return spawnService([
    '--input-stream', 'kill-in', '--output-stream', output, '--kinesis-endpoint', kinesalite.endpoint,
    '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--time-field', 'time', '--sample-size', '64', '--trees', '30',
    '--checkpoint', `file:${join(dir, checkpoint)}`, '--checkpoint-records', '300', '--checkpoint-interval', '0.2',
    '--get-records-limit', '200', '--poll-interval-ms', '200', '--idle-poll-ms', '200', '--exit-when-idle', '0.6',
    '--stats-interval', '0.05', ...extra,
  ]);
}

describe.skipIf(skipReason !== undefined)('SIGKILL x3 on an unkeyed 2-shard stream with random partition keys', () => {
  it('gives every recordId the score of two uninterrupted runs, and every anomaly its notification', async () => {
    // The two uninterrupted runs and the killed-and-restarted chain use their own output
    // streams and checkpoint files, so all three go at the same time.
    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'kill-anomalies');
    const references = ['kill-ref-a', 'kill-ref-b'].map(async (name) => {
      await createStream(kinesis, name, 1);
      await finishService(startRun(name, `${name}.ckpt`, []));
      return scoresOf(kinesis, name);
    });
    const chain = (async () => {
      await createStream(kinesis, 'kill-out', 1);
      const withSns = ['--sns-topic-arn', topicArn, '--sns-endpoint', moto!.endpoint, '--sns-rate', '100000'];
      const random = mulberry32(4242);
      for (let k = 0; k < KILLS; k++) {
        // Counted by each run from its own start (after the restart's replay).
        const at = 600 + Math.floor(random() * 900);
        await killAt(startRun('kill-out', 'kill.ckpt', withSns), at);
      }
      await finishService(startRun('kill-out', 'kill.ckpt', withSns));
    })();
    const [refs] = await Promise.all([Promise.all(references), chain]);
    const [a, b] = refs as [Map<string, OutputRecord>, Map<string, OutputRecord>];
    expect(a.size).toBe(RECORDS);
    expect([...a].filter(([id, o]) => b.get(id)?.score !== o.score)).toEqual([]);

    const killed = await scoresOf(kinesis, 'kill-out');
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
