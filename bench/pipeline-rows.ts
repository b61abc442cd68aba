/**
 * Pipeline rows beyond the detect row (bench/pipeline.ts adds them to its result):
 *
 * - keyed detect, 1,000 keys, 1-D, 50 trees: records/s with 1 scoring worker and with N
 *   (the machine's cores), measured alternately in one run, and their ratio;
 * - `run` through kinesalite (one shard in, one shard out): records/s with --emit anomalies
 *   and with --emit all, from the start until every record was delivered.
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

export async function benchRun(options: { records: number }): Promise<RunRow> {
  const kinesalite = await startKinesalite();
  const kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  try {
    const create = async (name: string): Promise<void> => {
      await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
      for (;;) {
        const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
        if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await create('bench-in');
    let seed = 3;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < options.records; i += 500) {
      const entries = [];
      for (let j = i; j < Math.min(options.records, i + 500); j++) {
        const value = random() < 0.005 ? 15 + 30 * random() : 30 + 2 * random();
        entries.push({ Data: Buffer.from(`{"time":${j},"value":${value.toFixed(3)}}`), PartitionKey: 'one' });
      }
      await kinesis.send(new PutRecordsCommand({ StreamName: 'bench-in', Records: entries }));
    }
    const rate = async (emit: 'anomalies' | 'all'): Promise<number> => {
      const out = `bench-out-${emit}`;
      await create(out);
      const config = (await loadServiceConfig(
        ['--input-stream', 'bench-in', '--output-stream', out, '--kinesis-endpoint', kinesalite.endpoint, '--region', 'us-east-1', '--start-position', 'TRIM_HORIZON', '--emit', emit, '--checkpoint', 'none', '--stats-interval', '0', '--log-level', 'error', '--poll-interval-ms', '200', '--idle-poll-ms', '200'],
        { env: {} },
      ))!;
      const stderr = new PassThrough();
      stderr.resume();
      const started = performance.now();
      const service = await AnomalyService.start(config, { stderr, awsOverrides: { credentials: { ...LOCAL_CREDENTIALS } } });
      // Done once every record was read, scored and its output accepted.
      let seconds = 0;
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          const s = service.stats();
          if (s.recordsScored >= options.records && (s.sink?.recordsPut ?? 0) >= s.outputRecords && service.stats().outputRecords > 0) {
            seconds = (performance.now() - started) / 1000;
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      service.stop('bench');
      await service.done;
      return options.records / seconds;
    };
    return { runRecords: options.records, runEmitAnomaliesRecordsPerSecond: await rate('anomalies'), runEmitAllRecordsPerSecond: await rate('all') };
  } finally {
    kinesis.destroy();
    await kinesalite.stop();
  }
}
