/**
 * The handler in-process against kinesalite (behind the fault proxy for the
 * output stream) and moto_server (S3 state): replays are skipped, a delivery
 * that fails mid-batch commits exactly the delivered prefix and reports the
 * first undelivered record, KPL aggregates score like plain records, and two
 * writers of one shard's state cannot both save.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createKinesisClient, createS3Client } from '../../src/aws/clients.js';
import { aggregate } from '../../src/aws/kpl.js';
import { LOCAL_CREDENTIALS } from '../../tools/local-servers.js';
import { decodeCheckpoint } from '../../src/checkpoint/checkpoint-store.js';
import { temperatureRecords } from '../../src/generate/temperature.js';
import { createHandler } from '../../src/lambda/handler.js';
import { loadLambdaConfig } from '../../src/lambda/config.js';
import { DELIVERY_RECORDS } from '../../src/lambda/shard-batch.js';
import { ShardStateStore, StateConflictError } from '../../src/lambda/shard-state.js';
import { kinesisEvent, readShards } from '../support/esm-driver.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createStream, localAwsConfig, motoServerUnavailableReason, startKinesalite, startMotoServer, type LocalServer } from '../support/local-aws.js';
import { putRaw, readOutput, referenceScores } from '../service/support.js';

const BUCKET = 'rcf-handler-state';
const COUNT = 1200;

const motoMissing = motoServerUnavailableReason();
if (motoMissing !== undefined) console.warn(`lambda handler tests skipped: ${motoMissing}`);

let kinesalite: LocalServer;
let moto: LocalServer;
let proxy: FaultProxy;
let kinesis: KinesisClient;
let s3: S3Client;
let inputArn: string;
const values = [...temperatureRecords({ count: COUNT, seed: 3 })];

beforeAll(async () => {
  if (motoMissing !== undefined) return;
  [kinesalite, moto] = await Promise.all([startKinesalite(), startMotoServer()]);
  proxy = await startFaultProxy({ target: kinesalite.endpoint });
  const local = localAwsConfig({ kinesis: kinesalite.endpoint, s3: moto.endpoint });
  kinesis = createKinesisClient(local);
  s3 = createS3Client(local);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await createStream(kinesis, 'h-in', 1);
  inputArn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'h-in' }))).StreamDescriptionSummary!.StreamARN!;
  await putRaw(kinesis, 'h-in', values.map((v) => ({ data: JSON.stringify(v), partitionKey: 'sensor' })));
}, 60_000);

afterAll(async () => {
  kinesis?.destroy();
  s3?.destroy();
  await proxy?.close();
  await Promise.all([kinesalite?.stop(), moto?.stop()]);
});

function handlerFor(name: string, extra: NodeJS.ProcessEnv = {}): ReturnType<typeof createHandler> {
  return createHandler({
    env: {
      RCF_REGION: 'us-east-1',
      RCF_CHECKPOINT: `s3:${BUCKET}/${name}`,
      RCF_OUTPUT_STREAM: `${name}-out`,
      RCF_EMIT: 'all',
      RCF_TIME_FIELD: 'time',
      RCF_LOG_LEVEL: 'error',
      AWS_ENDPOINT_URL_S3: moto.endpoint,
      AWS_ENDPOINT_URL_KINESIS: proxy.endpoint,
      ...extra,
    },
    awsOverrides: { credentials: { ...LOCAL_CREDENTIALS } },
  });
}

async function storedPosition(name: string, shardId: string): Promise<string | undefined> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${name}/h-in/${shardId}.state` }));
  return decodeCheckpoint(await res.Body!.transformToByteArray(), 'test').shards[shardId]?.sequenceNumber;
}

describe.skipIf(motoMissing !== undefined)('Lambda handler (in-process)', () => {
  it('commits the delivered prefix when the output stream fails mid-batch, and the retry completes it with the same scores', async () => {
    await createStream(kinesis, 'partial-out', 1);
    const [shard] = await readShards(kinesis, 'h-in');
    const records = shard!.records;
    const handler = handlerFor('partial');
    try {
      // The first PutRecords (the first delivery chunk) goes through; every later one fails.
      proxy.setRules([{ target: 'PutRecords', fault: 'internal', calls: Array.from({ length: 200 }, (_, i) => i + 2) }]);
      const first = await handler(kinesisEvent(inputArn, shard!.shardId, records), { getRemainingTimeInMillis: () => 6_500 });
      expect(first.batchItemFailures).toEqual([{ itemIdentifier: records[DELIVERY_RECORDS]!.SequenceNumber }]);
      expect(await storedPosition('partial', shard!.shardId)).toBe(records[DELIVERY_RECORDS - 1]!.SequenceNumber);

      // The mapping retries from the reported record.
      proxy.setRules([]);
      const retry = await handler(kinesisEvent(inputArn, shard!.shardId, records.slice(DELIVERY_RECORDS)));
      expect(retry.batchItemFailures).toEqual([]);
      expect(await storedPosition('partial', shard!.shardId)).toBe(records[COUNT - 1]!.SequenceNumber);

      // A replay of everything is skipped: nothing new on the output stream.
      const replay = await handler(kinesisEvent(inputArn, shard!.shardId, records));
      expect(replay.batchItemFailures).toEqual([]);

      const out = await readOutput(kinesis, 'partial-out');
      expect(out.map((o) => o.recordId)).toEqual(records.map((r) => `${shard!.shardId}:${r.SequenceNumber!}`));
      const reference = await referenceScores(['--time-field', 'time'], values.map((v) => ({ values: [v.value] })));
      expect(out.map((o) => o.score)).toEqual(reference.map((r) => r.score));
    } finally {
      proxy.setRules([]);
      (await handler.runtime()).close();
    }
  });

  it('scores the user records of KPL aggregates like the same records sent one by one', async () => {
    await createStream(kinesis, 'kpl-in', 1);
    await createStream(kinesis, 'kpl-out', 1);
    const bodies = values.slice(0, 600).map((v) => JSON.stringify(v));
    const aggregates: { data: Uint8Array; partitionKey: string }[] = [];
    for (let i = 0; i < bodies.length; i += 50) {
      aggregates.push({ data: aggregate(bodies.slice(i, i + 50).map((b) => ({ partitionKey: 'sensor', data: Buffer.from(b) }))), partitionKey: 'sensor' });
    }
    await putRaw(kinesis, 'kpl-in', aggregates);
    const [shard] = await readShards(kinesis, 'kpl-in');
    expect(shard!.records.length).toBe(12);
    const arn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'kpl-in' }))).StreamDescriptionSummary!.StreamARN!;
    const handler = handlerFor('kpl', { RCF_OUTPUT_STREAM: 'kpl-out' });
    try {
      // Two batches, split inside no aggregate; then the whole shard again (all skipped).
      for (const part of [shard!.records.slice(0, 5), shard!.records.slice(5), shard!.records]) {
        expect((await handler(kinesisEvent(arn, shard!.shardId, part))).batchItemFailures).toEqual([]);
      }
      const out = await readOutput(kinesis, 'kpl-out');
      expect(out.length).toBe(600);
      expect(out[51]!.recordId).toBe(`${shard!.shardId}:${shard!.records[1]!.SequenceNumber!}:1`);
      const reference = await referenceScores(['--time-field', 'time'], values.slice(0, 600).map((v) => ({ values: [v.value] })));
      expect(out.map((o) => o.score)).toEqual(reference.map((r) => r.score));
    } finally {
      (await handler.runtime()).close();
    }
  });

  it('reports the first record of the chunk whose notification SNS refused, after committing the chunks before it', async () => {
    const [shard] = await readShards(kinesis, 'h-in');
    const records = shard!.records;
    await createStream(kinesis, 'sns-out', 1);
    const reference = await referenceScores(['--time-field', 'time'], values.map((v) => ({ values: [v.value] })));
    const firstAnomaly = reference.findIndex((r) => r.anomaly);
    expect(firstAnomaly).toBeGreaterThanOrEqual(0);
    const chunkStart = Math.floor(firstAnomaly / DELIVERY_RECORDS) * DELIVERY_RECORDS;
    const handler = handlerFor('sns', {
      RCF_OUTPUT_STREAM: 'sns-out',
      RCF_SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:no-such-topic',
      AWS_ENDPOINT_URL_SNS: moto.endpoint,
    });
    try {
      const res = await handler(kinesisEvent(inputArn, shard!.shardId, records));
      expect(res.batchItemFailures).toEqual([{ itemIdentifier: records[chunkStart]!.SequenceNumber }]);
      if (chunkStart > 0) expect(await storedPosition('sns', shard!.shardId)).toBe(records[chunkStart - 1]!.SequenceNumber);
      else await expect(storedPosition('sns', shard!.shardId)).rejects.toThrow();
    } finally {
      (await handler.runtime()).close();
    }
  });

  it('writes results and dead letters to the log streams when no output or dead-letter stream is set', async () => {
    const bodies = ['{"time":1,"value":30.1}', 'oops', '{"time":2,"value":30.2}'];
    await createStream(kinesis, 'log-in', 1);
    await putRaw(kinesis, 'log-in', bodies.map((data) => ({ data, partitionKey: 'p' })));
    const [shard] = await readShards(kinesis, 'log-in');
    const arn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'log-in' }))).StreamDescriptionSummary!.StreamARN!;
    let out = '';
    let err = '';
    const stdout = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
    const stderr = new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) });
    const handler = createHandler({
      env: { RCF_REGION: 'us-east-1', RCF_CHECKPOINT: `s3:${BUCKET}/log`, RCF_EMIT: 'all', RCF_TIME_FIELD: 'time', RCF_LOG_LEVEL: 'error', AWS_ENDPOINT_URL_S3: moto.endpoint },
      awsOverrides: { credentials: { ...LOCAL_CREDENTIALS } },
      stdout,
      stderr,
    });
    try {
      // Record by record, as three invocations: the log streams gain no listener per invocation.
      expect((await handler(kinesisEvent(arn, shard!.shardId, shard!.records.slice(0, 1)))).batchItemFailures).toEqual([]);
      const listeners = [stdout.listenerCount('error'), stderr.listenerCount('error')];
      expect((await handler(kinesisEvent(arn, shard!.shardId, shard!.records.slice(1, 2)))).batchItemFailures).toEqual([]);
      expect((await handler(kinesisEvent(arn, shard!.shardId, shard!.records))).batchItemFailures).toEqual([]);
      expect([stdout.listenerCount('error'), stderr.listenerCount('error')]).toEqual(listeners);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { time: number; score: number; recordId: string });
      expect(lines.map((l) => [l.time, l.recordId])).toEqual([
        [1, `${shard!.shardId}:${shard!.records[0]!.SequenceNumber!}`],
        [2, `${shard!.shardId}:${shard!.records[2]!.SequenceNumber!}`],
      ]);
      const letter = JSON.parse(err.trim()) as { reason: string; input: string; source: string };
      expect(letter.input).toBe('oops');
      expect(letter.reason).toMatch(/JSON/);
      expect(letter.source).toBe(`${shard!.shardId}:${shard!.records[1]!.SequenceNumber!}`);
    } finally {
      (await handler.runtime()).close();
    }
  });

  it('writes one CloudWatch EMF line per shard batch with what that invocation did', async () => {
    const bodies = ['{"time":1,"value":30.1}', 'not json', '{"time":2,"value":30.2}', '{"time":3}'];
    await createStream(kinesis, 'emf-in', 1);
    await putRaw(kinesis, 'emf-in', bodies.map((data) => ({ data, partitionKey: 'p' })));
    const [shard] = await readShards(kinesis, 'emf-in');
    const arn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'emf-in' }))).StreamDescriptionSummary!.StreamARN!;
    let metrics = '';
    const sink = (): Writable => new Writable({ write: (_c: Buffer, _e, cb) => cb() });
    const handler = createHandler({
      env: { RCF_REGION: 'us-east-1', RCF_CHECKPOINT: `s3:${BUCKET}/emf`, RCF_EMIT: 'all', RCF_TIME_FIELD: 'time', RCF_LOG_LEVEL: 'error', AWS_ENDPOINT_URL_S3: moto.endpoint },
      awsOverrides: { credentials: { ...LOCAL_CREDENTIALS } },
      stdout: sink(),
      stderr: sink(),
      metrics: new Writable({ write: (c: Buffer, _e, cb) => ((metrics += c.toString()), cb()) }),
    });
    try {
      expect((await handler(kinesisEvent(arn, shard!.shardId, shard!.records.slice(0, 2)))).batchItemFailures).toEqual([]);
      // The replay of the first two is skipped: the second invocation scores only the last two.
      expect((await handler(kinesisEvent(arn, shard!.shardId, shard!.records))).batchItemFailures).toEqual([]);
      const lines = metrics.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] } });
      expect(lines).toHaveLength(2);
      for (const l of lines) {
        const d = l._aws.CloudWatchMetrics[0]!;
        expect(d.Namespace).toBe('rcf-stream');
        expect(d.Dimensions).toEqual([['FunctionName', 'Stream']]);
        expect(l['Stream']).toBe('emf-in');
        for (const m of d.Metrics) expect(typeof l[m.Name]).toBe('number');
      }
      expect(lines.map((l) => [l['RecordsRead'], l['RecordsScored'], l['BadRecords'], l['OutputRecords']])).toEqual([
        [2, 1, 1, 1],
        [4, 1, 1, 1],
      ]);
    } finally {
      (await handler.runtime()).close();
    }
  });

  it('lets only one of two writers that read the same state save it, and keeps the saver\'s warm value', async () => {
    const config = await loadLambdaConfig({ RCF_CHECKPOINT: `s3:${BUCKET}/conflict` });
    const disposed: string[] = [];
    const warm = (name: string): { name: string; dispose(): void } => ({ name, dispose: () => disposed.push(name) });
    const a = new ShardStateStore<ReturnType<typeof warm>>({ client: s3, location: config.state });
    const b = new ShardStateStore<ReturnType<typeof warm>>({ client: s3, location: config.state });
    const models = (n: number): Uint8Array => Uint8Array.of(n, n, n);
    try {
      // Both see "no state yet": If-None-Match: * lets one create it.
      const [sa, sb] = await Promise.all([a.load('s', 'shard-1'), b.load('s', 'shard-1')]);
      expect(sa.source).toBe('new');
      await a.save('s', 'shard-1', sa, { sequenceNumber: '100' }, models(1), warm('a1'));
      await expect(b.save('s', 'shard-1', sb, { sequenceNumber: '200' }, models(2), warm('b1'))).rejects.toBeInstanceOf(StateConflictError);
      expect(disposed).toEqual(['b1']);
      // Both read the stored state: If-Match lets one replace it. a's copy is still current (304, its warm value back).
      const [ra, rb] = await Promise.all([b.load('s', 'shard-1'), a.load('s', 'shard-1')]);
      expect(ra.position).toEqual({ sequenceNumber: '100' });
      expect(ra.source).toBe('read');
      expect(Buffer.from(ra.models!)).toEqual(Buffer.from(models(1)));
      expect(rb.source).toBe('cached');
      expect(rb.warm?.name).toBe('a1');
      await a.save('s', 'shard-1', rb, { sequenceNumber: '300' }, models(3), rb.warm);
      await expect(b.save('s', 'shard-1', ra, { sequenceNumber: '400' }, models(4), warm('b2'))).rejects.toBeInstanceOf(StateConflictError);
      const fresh = await b.load('s', 'shard-1');
      expect(fresh.position).toEqual({ sequenceNumber: '300' });
      expect(Buffer.from(fresh.models!)).toEqual(Buffer.from(models(3)));
      // a saved last: its warm value is current; b's copies were disposed as their saves failed.
      const again = await a.load('s', 'shard-1');
      expect(again.source).toBe('cached');
      expect(again.warm?.name).toBe('a1');
      expect(disposed).toEqual(['b1', 'b2']);
      a.release('s', 'shard-1', again, again.warm!);
    } finally {
      a.close();
      b.close();
    }
  });
});
