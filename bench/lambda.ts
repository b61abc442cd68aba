/**
 * `npm run bench:lambda`: what the Lambda handler costs, against local
 * servers (moto_server for S3 and SNS, kinesalite for the output stream):
 *
 * - cold start, in fresh processes: module load, WASM compile, setup
 *   (configuration, clients), and the first invocation, whose first step is
 *   the first state load (GET + decode of the shard's stored models);
 * - warm batches of 10,000 records, 50 trees, 1-D, unkeyed and with 100 keys:
 *   total ms and its parts (state revalidation, scoring, delivery, state save),
 *   with the share spent in S3 (requests) and in scoring.
 *
 * Medians of REPEATS runs. Local servers are not AWS: S3 latency on AWS is
 * typically 10-30 ms per request instead of moto's few ms, and the model
 * encode/decode times are what they are anywhere.
 */
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import type { KinesisStreamEvent } from 'aws-lambda';
import { bundleHandler } from '../infra/bundle.js';
import { createKinesisClient, createS3Client } from '../src/aws/clients.js';
import { LOCAL_CREDENTIALS, localAwsConfig, motoServerUnavailableReason, startKinesalite, startMotoServer } from '../tools/local-servers.js';
import { temperatureRecords } from '../src/generate/temperature.js';
import { createHandler } from '../src/lambda/handler.js';
import type { ShardBatchStats } from '../src/lambda/shard-batch.js';

const BATCH = 10_000;
const REPEATS = 5;
const BUCKET = 'rcf-bench-state';
const STREAM_ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/bench-in';
const SHARD = 'shardId-000000000000';
const HERE = dirname(fileURLToPath(import.meta.url));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Records `from .. from+count` of the reference series as a Kinesis event (sequence numbers = 1e20 + index). */
function event(from: number, count: number, keys: number): KinesisStreamEvent {
  const series = temperatureRecords({ count: from + count, seed: 17 });
  const records: KinesisStreamEvent['Records'] = [];
  let i = 0;
  for (const r of series) {
    if (i >= from) {
      const body = keys > 0 ? { ...r, sensor: `s${i % keys}` } : r;
      const seq = (10n ** 20n + BigInt(i)).toString();
      records.push({
        kinesis: { kinesisSchemaVersion: '1.0', partitionKey: 'p', sequenceNumber: seq, data: Buffer.from(JSON.stringify(body)).toString('base64'), approximateArrivalTimestamp: 0 },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${SHARD}:${seq}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::000000000000:role/bench',
        awsRegion: 'us-east-1',
        eventSourceARN: STREAM_ARN,
      });
    }
    i++;
  }
  return { Records: records };
}

interface Row {
  label: string;
  stateBytes: number;
  ms: Record<keyof ShardBatchStats['ms'], number>;
}

async function main(): Promise<void> {
  const missing = motoServerUnavailableReason();
  if (missing !== undefined) {
    console.log(`bench:lambda skipped: ${missing}`);
    return;
  }
  const [kinesalite, moto] = await Promise.all([startKinesalite(), startMotoServer()]);
  const local = localAwsConfig({ kinesis: kinesalite.endpoint, s3: moto.endpoint, sns: moto.endpoint });
  const kinesis = createKinesisClient(local);
  const s3 = createS3Client(local);
  const sns = new SNSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { ...LOCAL_CREDENTIALS } });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await kinesis.send(new CreateStreamCommand({ StreamName: 'bench-out', ShardCount: 1 }));
    for (;;) {
      const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'bench-out' }));
      if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const topicArn = (await sns.send(new CreateTopicCommand({ Name: 'bench-anomalies' }))).TopicArn!;
    const baseEnv = (prefix: string, keys: number): NodeJS.ProcessEnv => ({
      RCF_REGION: 'us-east-1',
      RCF_CHECKPOINT: `s3:${BUCKET}/${prefix}`,
      RCF_OUTPUT_STREAM: 'bench-out',
      RCF_SNS_TOPIC_ARN: topicArn,
      RCF_TIME_FIELD: 'time',
      RCF_TREES: '50',
      RCF_LOG_LEVEL: 'info',
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ENDPOINT_URL_KINESIS: kinesalite.endpoint,
      ...(keys > 0 ? { RCF_KEY_FIELD: 'sensor' } : {}),
    });

    const bundled = join(bundleHandler(join(HERE, '..', '..', '.tmp', 'bench-lambda-bundle')), 'index.mjs');
    const rows: Row[] = [];
    const cold: { label: string; runs: Record<string, number>[] }[] = [];
    for (const { label, keys, prefix } of [
      { label: '50 trees, 1-D, unkeyed', keys: 0, prefix: 'unkeyed' },
      { label: '50 trees, 1-D, 100 keys', keys: 100, prefix: 'keyed' },
    ]) {
      const stats: ShardBatchStats[] = [];
      const stderr = new PassThrough();
      let partial = '';
      stderr.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          const o = JSON.parse(l) as { msg?: string } & ShardBatchStats;
          if (o.msg === 'batch') stats.push(o);
        }
      });
      const handler = createHandler({ env: baseEnv(prefix, keys), awsOverrides: { credentials: { ...LOCAL_CREDENTIALS } }, stderr });
      // Batch 0 creates the state and fills the models; batch 1 is the first warm one.
      for (let b = 0; b < REPEATS + 2; b++) {
        const res = await handler(event(b * BATCH, BATCH, keys));
        if (res.batchItemFailures.length > 0) throw new Error(`${label}: batch ${b} failed`);
      }
      (await handler.runtime()).close();
      const warm = stats.slice(2);
      const ms = Object.fromEntries(Object.keys(warm[0]!.ms).map((k) => [k, median(warm.map((s) => s.ms[k as keyof ShardBatchStats['ms']]))])) as Row['ms'];
      rows.push({ label, stateBytes: warm[warm.length - 1]!.state.writtenBytes, ms });

      // Cold starts: fresh processes, each scoring one new record on top of the stored state.
      for (const [variant, module] of [['dist/ modules', undefined], ['esbuild bundle', bundled]] as const) {
      const runs: Record<string, number>[] = [];
      for (let c = 0; c < REPEATS; c++) {
        const ev = event((REPEATS + 2) * BATCH + cold.length * REPEATS + c, 1, keys);
        const env: NodeJS.ProcessEnv = { ...baseEnv(prefix, keys), PATH: process.env['PATH'], AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
        if (module !== undefined) env['LAMBDA_HANDLER_MODULE'] = module;
        const out = await new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, [join(HERE, 'lambda-cold.js'), JSON.stringify(ev)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
          let o = '';
          let e = '';
          child.stdout.on('data', (d: Buffer) => (o += d.toString()));
          child.stderr.on('data', (d: Buffer) => (e += d.toString()));
          child.on('close', (code) => (code === 0 ? resolve(`${o}\n${e}`) : reject(new Error(`cold start exited ${code}: ${e}`))));
        });
        const timing = JSON.parse(out.split('\n').find((l) => l.includes('importMs'))!) as Record<string, number>;
        const batch = JSON.parse(out.split('\n').find((l) => l.includes('"msg":"batch"'))!) as ShardBatchStats;
        runs.push({ ...timing, stateLoadMs: batch.ms.load, stateDecodeMs: batch.ms.decode, stateBytes: batch.state.readBytes });
      }
      cold.push({ label: `${label}, ${variant}`, runs });
      }
    }

    const f = (x: number): string => x.toFixed(1).padStart(8);
    const pct = (x: number, of: number): string => `${((100 * x) / of).toFixed(0)}%`.padStart(5);
    console.log(`\nrcf-stream Lambda handler, local servers (moto_server S3/SNS, kinesalite); medians of ${REPEATS}\n`);
    console.log('Cold start (fresh process)                          import  wasm-compile   setup  first-invocation (state load: GET+decode, decode)  state bytes');
    for (const c of cold) {
      const m = (k: string): number => median(c.runs.map((r) => r[k]!));
      console.log(
        `  ${c.label.padEnd(48)} ${f(m('importMs'))} ${m('wasmCompileMs') < 0 ? ' (in setup)' : f(m('wasmCompileMs'))}     ${f(m('setupMs'))} ${f(m('firstInvocationMs'))}          (${f(m('stateLoadMs'))}, ${f(m('stateDecodeMs'))})       ${m('stateBytes')}`,
      );
    }
    console.log(`\nWarm batch of ${BATCH} records                total   state-load  scoring  delivery  state-save (encode)   S3 share  scoring share  state bytes`);
    for (const r of rows) {
      const s3ms = r.ms.load - r.ms.decode + (r.ms.save - r.ms.encode);
      console.log(
        `  ${r.label.padEnd(32)} ${f(r.ms.total)} ${f(r.ms.load)} ${f(r.ms.score)} ${f(r.ms.deliver)} ${f(r.ms.save)} (${f(r.ms.encode)})  ${pct(s3ms, r.ms.total)}     ${pct(r.ms.score, r.ms.total)}       ${r.stateBytes}`,
      );
    }
    console.log('\nS3 share: the S3 requests (conditional GET revalidation + conditional PUT), model encode/decode excluded.');
  } finally {
    kinesis.destroy();
    s3.destroy();
    sns.destroy();
    await Promise.all([kinesalite.stop(), moto.stop()]);
  }
}

await main();
