/**
 * The reference scenario end to end on local servers: the generator puts the
 * temperature stream on In-RCFData-Stream, the service scores it, anomalies
 * land on Out-RCFData-Stream and reach an SQS queue subscribed to the SNS
 * topic `anomaly_detection`; the checkpoint goes to S3 (moto_server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { receiveAll, topicWithQueue } from '../support/sns-sqs.js';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createKinesisClient, createS3Client, createSnsClient } from '../../src/aws/clients.js';
import { LOCAL_CREDENTIALS } from '../../tools/local-servers.js';
import { S3CheckpointStore } from '../../src/checkpoint/index.js';
import { produceToKinesis } from '../../src/cli/kinesis-producer.js';
import { temperatureRecords } from '../../src/generate/temperature.js';
import {
  createStream,
  localAwsConfig,
  testClientConfig,
  motoServerUnavailableReason,
  readOutput,
  referenceScores,
  runToEnd,
  startKinesalite,
  startMotoServer,
  type LocalServer,
} from './support.js';

const skipReason = motoServerUnavailableReason();
if (skipReason) console.warn(`[skip] reference scenario with SNS and S3: ${skipReason}`);

let kinesalite: LocalServer;
let moto: LocalServer | undefined;
let kinesis: KinesisClient;
let sns: SNSClient;
let sqs: SQSClient;
let s3: S3Client;

beforeAll(async () => {
  if (skipReason) return;
  [kinesalite, moto] = await Promise.all([startKinesalite(), startMotoServer()]);
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  sns = createSnsClient(localAwsConfig({ sns: moto.endpoint }));
  s3 = createS3Client(localAwsConfig({ s3: moto.endpoint }));
  sqs = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { ...LOCAL_CREDENTIALS }, requestHandler: new NodeHttpHandler() });
});

afterAll(async () => {
  kinesis?.destroy();
  sns?.destroy();
  sqs?.destroy();
  s3?.destroy();
  await Promise.all([kinesalite?.stop(), moto?.stop()]);
});

describe.skipIf(skipReason !== undefined)('reference scenario (kinesalite + moto_server)', () => {
  it('generator -> In-RCFData-Stream -> run -> Out-RCFData-Stream + SNS message; checkpoint in S3', async () => {
    await createStream(kinesis, 'In-RCFData-Stream', 2);
    await createStream(kinesis, 'Out-RCFData-Stream', 1);
    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'anomaly_detection', 'anomaly-subscriber');
    await s3.send(new CreateBucketCommand({ Bucket: 'rcf-checkpoints' }));

    const count = 4000;
    const produced = await produceToKinesis({ stream: 'In-RCFData-Stream', aws: localAwsConfig({ kinesis: kinesalite.endpoint }), count, seed: 42, outlierRate: 0.01, labels: false, partitionKey: 'sensor-1' });
    expect(produced.records).toBe(count);

    const r = await runToEnd([
      '--input-stream', 'In-RCFData-Stream', '--output-stream', 'Out-RCFData-Stream', '--sns-topic-arn', topicArn,
      '--kinesis-endpoint', kinesalite.endpoint, '--sns-endpoint', moto!.endpoint, '--s3-endpoint', moto!.endpoint,
      '--checkpoint', 's3:rcf-checkpoints/scenario', '--start-position', 'TRIM_HORIZON', '--time-field', 'time', '--exit-when-idle', '1',
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stats.recordsScored).toBe(count);

    // Output: the anomalies, each with the reference fields, its score and a stable id.
    const out = await readOutput(kinesis, 'Out-RCFData-Stream');
    expect(out.length).toBe(r.stats.anomalies);
    expect(out.length).toBeGreaterThan(10);
    const all = [...temperatureRecords({ count, seed: 42 })];
    const expected = await referenceScores([], all.map((x) => ({ values: [x.value] })));
    const expectedAnomalies = all.map((x, i) => ({ ...x, ...expected[i]! })).filter((x) => x.anomaly);
    expect(out.map((o) => [o.time, o.value, o.score])).toEqual(expectedAnomalies.map((x) => [x.time, x.value, x.score]));
    expect(out.every((o) => /^shardId-00000000000[01]:\d+$/.test(o.recordId) && o.$partitionKey === o.recordId)).toBe(true);

    // SNS: 10 per minute by default, then one summary of the suppressed ones (sent at stop).
    expect(r.stats.notifications).toEqual({ queued: 10, suppressed: out.length - 10, dropped: 0 });
    const messages = await receiveAll(sqs, queueUrl, 11);
    const alarms = messages.filter((m) => m.Subject === 'Anomaly detected');
    expect(alarms).toHaveLength(10);
    const first = out[0]!;
    expect(alarms[0]!.Message).toBe(`Anomaly detected: Time=${first.time}, Value=${(first.value as number).toFixed(6)}, Score=${first.score.toFixed(6)}`);
    expect(alarms[0]!.MessageAttributes).toEqual({
      Score: { Type: 'Number', Value: String(first.score) },
      AnomalyId: { Type: 'String', Value: first.recordId },
    });
    for (const m of alarms) expect(m.Message).toMatch(/^Anomaly detected: Time=\d+, Value=\d+\.\d{6}, Score=\d+\.\d{6}$/);
    const summary = messages.find((m) => m.Subject === 'Anomalies suppressed');
    expect(summary?.Message).toMatch(new RegExp(`^${out.length - 10} further anomalies suppressed in the last minute; highest score \\d+\\.\\d{6}$`));

    // The final checkpoint in S3 covers both shards and holds the models.
    const cp = await new S3CheckpointStore({ client: s3, bucket: 'rcf-checkpoints', applicationName: 'scenario' }).load();
    expect(Object.keys(cp!.shards).sort()).toEqual(['shardId-000000000000', 'shardId-000000000001']);
    expect(cp!.models!.byteLength).toBeGreaterThan(10_000);
    console.log(`[scenario] ${count} records in ${r.stats.uptimeSeconds} s of service uptime; ${out.length} anomalies; checkpoint ${cp!.models!.byteLength} model bytes`);
  });
});
