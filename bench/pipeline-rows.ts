/**
 * Pipeline rows beyond the detect row (bench/pipeline.ts adds them to its result):
 *
 * - keyed detect, 1,000 keys, 1-D, 50 trees: records/s with 1 scoring worker and with N
 *   (the machine's cores), measured alternately in one run, and their ratio;
 * - `run` through kinesalite (one shard in, one shard out): records/s with --emit anomalies
 *   and with --emit all, from the start until every record was delivered;
 * - `run` through kinesalite on a 2-shard stream: records/s with --workers 1 and with the
 *   default workers (one thread per shard, up to the cores), alternately, and their ratio.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseDetectArgs, runDetect } from '../src/cli/detect-command.js';
import { loadServiceConfig } from '../src/service/run-config.js';
import { createKinesisClient } from '../src/aws/clients.js';
import { AnomalyService } from '../src/service/service.js';
import { CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { LOCAL_CREDENTIALS, localAwsConfig, startKinesalite } from '../tools/local-servers.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function quietIo(): { stdin: PassThrough; stdout: PassThrough; stderr: PassThrough } {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  io.stdout.resume();
  io.stderr.resume();
  return io;
}

export interface KeyedWorkersRow {
  keyedRecords: number;
  keyedWorkers: number;
  keyed1WorkerRecordsPerSecond: number;
  keyedNWorkersRecordsPerSecond: number;
  /** N workers / 1 worker, same run. */
  keyedWorkersSpeedup: number;
}

export async function benchKeyedWorkers(options: { records: number; runs: number }): Promise<KeyedWorkersRow> {
  const dir = await mkdtemp(join(tmpdir(), 'rcf-bench-keyed-'));
  try {
    const file = join(dir, 'keyed.ndjson');
    let seed = 7;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const lines: string[] = [];
    for (let i = 0; i < options.records; i++) lines.push(`{"time":${i},"value":${(30 + 2 * random()).toFixed(3)},"key":"k${i % 1000}"}`);
    await writeFile(file, `${lines.join('\n')}\n`);
    const workers = Math.max(2, Math.min(8, availableParallelism()));
    const seconds: Record<'one' | 'many', number[]> = { one: [], many: [] };
    for (let run = 0; run < options.runs; run++) {
      for (const which of ['one', 'many'] as const) {
        const config = parseDetectArgs([file, '--key-field', 'key', '--trees', '50', '--quiet', '--output', '/dev/null', '--workers', String(which === 'one' ? 1 : workers)])!;
        const started = performance.now();
        const r = await runDetect(config, quietIo() as never);
        if (r.exitCode !== 0 || r.stats.records !== options.records) throw new Error(`keyed detect failed (exit ${r.exitCode}, ${r.stats.records} records)`);
        seconds[which].push((performance.now() - started) / 1000);
      }
    }
    const one = options.records / median(seconds.one);
    const many = options.records / median(seconds.many);
    return { keyedRecords: options.records, keyedWorkers: workers, keyed1WorkerRecordsPerSecond: one, keyedNWorkersRecordsPerSecond: many, keyedWorkersSpeedup: many / one };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface RunRow {
  runRecords: number;
  runEmitAnomaliesRecordsPerSecond: number;
  runEmitAllRecordsPerSecond: number;
}

export interface RunWorkersRow {
  runWorkersRecords: number;
  /** Threads the default --workers chose on the 2-shard stream (1: the main thread). */
  runDefaultWorkers: number;
  run1WorkerRecordsPerSecond: number;
  runDefaultWorkersRecordsPerSecond: number;
  /** Default workers / --workers 1, medians of the same run. */
  runDefaultWorkersSpeedup: number;
}

/** kinesalite with `run`'s streams; each helper as the rows below use it. */
async function withKinesalite<T>(body: (k: { endpoint: string; create(name: string, shards?: number): Promise<void>; fill(name: string, records: number, keys: 'one' | 'random'): Promise<void> }) => Promise<T>): Promise<T> {
  const kinesalite = await startKinesalite();
  const kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  try {
    const create = async (name: string, shards = 1): Promise<void> => {
      await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
      for (;;) {
        const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
        if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const fill = async (name: string, records: number, keys: 'one' | 'random'): Promise<void> => {
      let seed = 3;
      const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
      for (let i = 0; i < records; i += 500) {
        const entries = [];
        for (let j = i; j < Math.min(records, i + 500); j++) {
          const value = random() < 0.005 ? 15 + 30 * random() : 30 + 2 * random();
          entries.push({ Data: Buffer.from(`{"time":${j},"value":${value.toFixed(3)}}`), PartitionKey: keys === 'one' ? 'one' : `pk-${Math.floor(random() * 1e9)}` });
        }
        await kinesis.send(new PutRecordsCommand({ StreamName: name, Records: entries }));
      }
    };
    return await body({ endpoint: kinesalite.endpoint, create, fill });
  } finally {
    kinesis.destroy();
    await kinesalite.stop();
  }
}

/** Seconds from start until `records` were read, scored and their output accepted; and the service's log. */
async function timeRun(argv: string[], records: number): Promise<{ seconds: number; log: string }> {
  const config = (await loadServiceConfig(argv, { env: {} }))!;
  const stderr = new PassThrough();
  let log = '';
  stderr.on('data', (d: Buffer) => (log += d.toString()));
  const started = performance.now();
  const service = await AnomalyService.start(config, { stderr, awsOverrides: { credentials: { ...LOCAL_CREDENTIALS } } });
  let seconds = 0;
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      const s = service.stats();
      if (s.recordsScored >= records && (s.sink?.recordsPut ?? 0) >= s.outputRecords && s.outputRecords > 0) {
        seconds = (performance.now() - started) / 1000;
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
  service.stop('bench');
  await service.done;
  return { seconds, log };
}

const runArgs = (input: string, output: string, endpoint: string, emit: 'anomalies' | 'all', logLevel: string): string[] => [
  '--input-stream', input, '--output-stream', output, '--kinesis-endpoint', endpoint, '--region', 'us-east-1', '--start-position', 'TRIM_HORIZON',
  '--emit', emit, '--checkpoint', 'none', '--stats-interval', '0', '--log-level', logLevel, '--poll-interval-ms', '200', '--idle-poll-ms', '200',
];

export async function benchRun(options: { records: number }): Promise<RunRow> {
  return withKinesalite(async (k) => {
    await k.create('bench-in');
    await k.fill('bench-in', options.records, 'one');
    const rate = async (emit: 'anomalies' | 'all'): Promise<number> => {
      const out = `bench-out-${emit}`;
      await k.create(out);
      const { seconds } = await timeRun(runArgs('bench-in', out, k.endpoint, emit, 'error'), options.records);
      return options.records / seconds;
    };
    return { runRecords: options.records, runEmitAnomaliesRecordsPerSecond: await rate('anomalies'), runEmitAllRecordsPerSecond: await rate('all') };
  });
}

/**
 * `run` on a 2-shard stream with --workers 1 (main-thread scoring) and with the default
 * (one worker thread per shard, up to the cores), alternately, `runs` times each.
 */
export async function benchRunWorkers(options: { records: number; runs: number }): Promise<RunWorkersRow> {
  return withKinesalite(async (k) => {
    await k.create('bench-in-2', 2);
    await k.fill('bench-in-2', options.records, 'random');
    const seconds: Record<'one' | 'default', number[]> = { one: [], default: [] };
    let chosen = 1;
    for (let run = 0; run < options.runs; run++) {
      for (const which of ['one', 'default'] as const) {
        const out = `bench-w-out-${which}-${run}`;
        await k.create(out);
        const argv = [...runArgs('bench-in-2', out, k.endpoint, 'anomalies', 'info'), ...(which === 'one' ? ['--workers', '1'] : [])];
        const r = await timeRun(argv, options.records);
        seconds[which].push(r.seconds);
        if (which === 'default') chosen = Number(/scoring on worker threads workers=(\d+)/.exec(r.log)?.[1] ?? 1);
      }
    }
    const one = options.records / median(seconds.one);
    const many = options.records / median(seconds.default);
    return { runWorkersRecords: options.records, runDefaultWorkers: chosen, run1WorkerRecordsPerSecond: one, runDefaultWorkersRecordsPerSecond: many, runDefaultWorkersSpeedup: many / one };
  });
}
