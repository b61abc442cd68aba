/**
 * `npm run demo:aws-local`: the reference AWS scenario on local servers.
 *
 * Starts kinesalite (Kinesis) and moto_server (SNS + SQS), creates
 * In-RCFData-Stream, Out-RCFData-Stream and the topic anomaly_detection with
 * an SQS queue subscribed, runs `rcf-stream run` as a subprocess, puts the
 * generator's records on the input stream, and prints the anomalies as they
 * arrive on the output stream and at the SNS subscriber. Finite by default;
 * everything it started is stopped on the way out (also on Ctrl-C).
 *
 * A development tool: kinesalite and the SQS client are devDependencies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createKinesisClient, createSnsClient } from '../src/aws/clients.js';
import { LOCAL_CREDENTIALS, localAwsConfig, motoServerUnavailableReason, startKinesalite, startMotoServer, type LocalServer } from './local-servers.js';
import { produceToKinesis } from '../src/cli/kinesis-producer.js';
import { choiceOption, integerOption, numberOption, parseCommandArgs, UsageError } from '../src/cli/args.js';
import { silenceSdkNodeVersionWarning } from '../src/cli/sdk-warnings.js';

const INPUT = 'In-RCFData-Stream';
const OUTPUT = 'Out-RCFData-Stream';
const TOPIC = 'anomaly_detection';

const HELP = `Usage: npm run demo:aws-local -- [options]

  --count N         records the generator puts on ${INPUT}   [3000]
  --rate N          records per second (0: as fast as Kinesis takes them) [300]
  --shards N        shards of ${INPUT}                       [2]
  --emit W          anomalies or all (what the service writes to ${OUTPUT}) [anomalies]
  --preload         put every record before starting the service, and report
                    its throughput (records read, scored and delivered per second)
  --quiet           do not print each output record and SNS message
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitActive(kinesis: KinesisClient, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await sleep(100);
  }
  throw new Error(`stream ${name} did not become ACTIVE`);
}

/** Prints every record arriving on the output stream until `stop` is set. */
async function followOutput(kinesis: KinesisClient, stop: { done: boolean }, onRecord: (r: Record<string, unknown>) => void): Promise<void> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: OUTPUT }))).Shards ?? [];
  const iterators = new Map<string, string | undefined>();
  for (const s of shards) {
    iterators.set(s.ShardId!, (await kinesis.send(new GetShardIteratorCommand({ StreamName: OUTPUT, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator);
  }
  for (;;) {
    let got = 0;
    for (const [id, it] of iterators) {
      if (it === undefined) continue;
      const res = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      iterators.set(id, res.NextShardIterator);
      for (const r of res.Records ?? []) onRecord(JSON.parse(Buffer.from(r.Data!).toString('utf8')) as Record<string, unknown>);
      got += res.Records?.length ?? 0;
    }
    if (stop.done && got === 0) return;
    await sleep(300);
  }
}

interface StatsLine {
  type?: string;
  level?: string;
  msg?: string;
  uptimeSeconds: number;
  recordsRead: number;
  recordsScored: number;
  outputRecords: number;
  anomalies: number;
  notifications: { queued: number; suppressed: number; dropped: number };
  checkpoints: { saved: number };
}

/** Renders the service's JSON lines for people and notes when all records were read, scored and delivered. */
class ThroughputWatch {
  #first: StatsLine | undefined;
  #done: StatsLine | undefined;
  #lastShown = -Infinity;

  constructor(
    private readonly count: number,
    private readonly emit: 'anomalies' | 'all',
  ) {}

  render(line: string): string | undefined {
    if (!line.startsWith('{')) return /NodeVersionSupport|node >=22|a\.co\/|upgrade to node|trace-warnings|versions published|^To continue|^More information|^\s*$/.test(line) ? undefined : line;
    const s = JSON.parse(line) as StatsLine & Record<string, unknown>;
    if (s.type === 'stats' || s.type === 'final-stats') {
      if (this.#first === undefined && s.recordsRead > 0) this.#first = s;
      const delivered = this.emit === 'all' ? s.outputRecords >= this.count : s.outputRecords >= s.anomalies;
      if (this.#done === undefined && s.recordsScored >= this.count && delivered) this.#done = s;
      // Every 5 s, and the final line.
      if (s.type === 'stats' && s.uptimeSeconds - this.#lastShown < 5) return undefined;
      this.#lastShown = s.uptimeSeconds;
      const n = s.notifications;
      return `${s.type === 'final-stats' ? 'final: ' : ''}${s.recordsScored} records scored, ${s.anomalies} anomalies, ${s.outputRecords} output, SNS ${n.queued} queued/${n.suppressed} suppressed/${n.dropped} dropped, ${s.checkpoints.saved} checkpoints`;
    }
    const { time: _t, level, msg, ...fields } = s;
    return `${level === 'info' ? '' : `${String(level)}: `}${String(msg)} ${JSON.stringify(fields)}`;
  }

  summary(): string | undefined {
    if (this.#first === undefined || this.#done === undefined) return undefined;
    // Stats come every 0.2 s: the span is known to within that.
    const seconds = Math.max(0.2, this.#done.uptimeSeconds - this.#first.uptimeSeconds + 0.2);
    return `throughput: ${this.count} records read, scored and delivered (--emit ${this.emit}) in ${seconds.toFixed(1)} s = ~${Math.round(this.count / seconds)} records/s`;
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    {
      count: { type: 'string' },
      rate: { type: 'string' },
      shards: { type: 'string' },
      emit: { type: 'string' },
      preload: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    0,
  );
  if (values['help'] === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const count = integerOption(values, 'count', 1, 10_000_000) ?? 3000;
  const rateOption = numberOption(values, 'rate', 0) ?? 300;
  const rate = rateOption === 0 ? undefined : rateOption;
  const shards = integerOption(values, 'shards', 1, 10) ?? 2;
  const emit = choiceOption(values, 'emit', ['anomalies', 'all'] as const) ?? 'anomalies';
  const preload = values['preload'] === true;
  const quiet = values['quiet'] === true;

  const servers: LocalServer[] = [];
  const clients: { destroy(): void }[] = [];
  let service: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'rcf-demo-aws-'));
  const abort = new AbortController();
  const onSignal = (): void => {
    process.stdout.write('\n[demo] interrupted; stopping everything\n');
    abort.abort();
    service?.kill('SIGTERM');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const motoMissing = motoServerUnavailableReason();
    process.stdout.write(`[demo] starting kinesalite${motoMissing ? '' : ' and moto_server'} on 127.0.0.1\n`);
    if (motoMissing) process.stdout.write(`[demo] no SNS part: ${motoMissing}\n`);
    const [kinesalite, moto] = await Promise.all([startKinesalite(), motoMissing ? Promise.resolve(undefined) : startMotoServer()]);
    servers.push(kinesalite);
    if (moto) servers.push(moto);

    const kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
    clients.push(kinesis);
    await kinesis.send(new CreateStreamCommand({ StreamName: INPUT, ShardCount: shards }));
    await kinesis.send(new CreateStreamCommand({ StreamName: OUTPUT, ShardCount: 1 }));
    await waitActive(kinesis, INPUT);
    await waitActive(kinesis, OUTPUT);
    process.stdout.write(`[demo] streams ${INPUT} (${shards} shards) and ${OUTPUT} created at ${kinesalite.endpoint}\n`);

    let topicArn: string | undefined;
    let queueUrl: string | undefined;
    let sqs: SQSClient | undefined;
    if (moto) {
      const sns = createSnsClient(localAwsConfig({ sns: moto.endpoint }));
      clients.push(sns);
      sqs = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { ...LOCAL_CREDENTIALS }, requestHandler: new NodeHttpHandler() });
      clients.push(sqs);
      topicArn = (await sns.send(new CreateTopicCommand({ Name: TOPIC }))).TopicArn!;
      queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'anomaly-subscriber' }))).QueueUrl!;
      const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!['QueueArn']!;
      await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
      process.stdout.write(`[demo] topic ${topicArn} with SQS subscriber ${queueArn}\n`);
    }

    const args = [
      fileURLToPath(new URL('../src/cli/main.js', import.meta.url)), 'run',
      '--input-stream', INPUT, '--output-stream', OUTPUT, '--kinesis-endpoint', kinesalite.endpoint, '--region', 'us-east-1',
      '--start-position', 'TRIM_HORIZON', '--time-field', 'time', '--checkpoint', `file:${join(dir, 'demo.ckpt')}`,
      '--exit-when-idle', '3', '--stats-interval', '0.2', '--stats-json', '--idle-poll-ms', '250', '--emit', emit,
      ...(topicArn !== undefined ? ['--sns-topic-arn', topicArn, '--sns-endpoint', moto!.endpoint] : []),
    ];
    const produce = async (): Promise<void> => {
      process.stdout.write(`[demo] putting ${count} generator records on ${INPUT}${rate === undefined ? ' as fast as it takes them' : ` at ${rate} records/s`}\n`);
      const produced = await produceToKinesis({ stream: INPUT, aws: localAwsConfig({ kinesis: kinesalite.endpoint }), count, seed: 42, outlierRate: 0.01, labels: false, rate, signal: abort.signal });
      process.stdout.write(
        `[demo] generator done: ${produced.records} records (${produced.outliers} injected outliers) in ${produced.seconds.toFixed(2)} s; the service stops after 3 s without input\n`,
      );
    };
    if (preload) await produce();
    process.stdout.write(`[demo] rcf-stream ${args.slice(1).join(' ')}\n`);
    service = spawn(process.execPath, args, {
      env: { ...process.env, AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    const throughput = new ThroughputWatch(count, emit);
    let partial = '';
    service.stderr!.on('data', (d: Buffer) => {
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const text = throughput.render(line);
        if (text !== undefined) process.stdout.write(`[service] ${text}\n`);
      }
    });
    const serviceExit = new Promise<number | null>((resolve) => service!.on('exit', (code) => resolve(code)));

    const stop = { done: false };
    let outputCount = 0;
    const follower = followOutput(kinesis, stop, (r) => {
      outputCount++;
      if (!quiet) process.stdout.write(`[output stream] time=${String(r['time'])} value=${String(r['value'])} score=${Number(r['score']).toFixed(4)} recordId=${String(r['recordId'])}\n`);
    });
    let snsCount = 0;
    const pollSqs = async (): Promise<void> => {
      if (sqs === undefined || queueUrl === undefined) return;
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      for (const m of res.Messages ?? []) {
        const body = JSON.parse(m.Body!) as { Subject?: string; Message: string; MessageAttributes?: Record<string, { Value: string }> };
        snsCount++;
        if (quiet) continue;
        const id = body.MessageAttributes?.['AnomalyId']?.Value;
        process.stdout.write(`[SNS subscriber] subject=${JSON.stringify(body.Subject ?? '')} message=${JSON.stringify(body.Message)}${id ? ` AnomalyId=${id}` : ''}\n`);
      }
      if (res.Messages?.length) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: res.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    };
    const sqsLoop = (async () => {
      while (!stop.done) {
        await pollSqs();
        await sleep(500);
      }
    })();

    if (!preload) await produce();
    const code = await serviceExit;
    stop.done = true;
    await follower;
    await sqsLoop;
    // The suppression summary is published as the service stops.
    for (let i = 0; i < 4; i++) {
      await pollSqs();
      await sleep(250);
    }
    process.stdout.write(`[demo] service exited with ${String(code)}; ${outputCount} records on ${OUTPUT}, ${snsCount} messages at the SNS subscriber\n`);
    const rateLine = throughput.summary();
    if (preload && rateLine !== undefined) process.stdout.write(`[demo] ${rateLine}\n`);
    return code === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (service && service.exitCode === null && service.signalCode === null) service.kill('SIGKILL');
    for (const c of clients) c.destroy();
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write('[demo] local servers stopped\n');
  }
}

silenceSdkNodeVersionWarning(); // as the rcf-stream command does (sdk-warnings.ts)
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`demo:aws-local: ${error instanceof UsageError ? error.message : ((error as Error).stack ?? String(error))}\n`);
    process.exitCode = 1;
  },
);
