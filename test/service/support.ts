/**
 * Helpers for the service tests: run the service in-process against local
 * servers, read output streams back, and compute reference scores with a
 * detector fed directly (no Kinesis in between).
 */
import { PassThrough } from 'node:stream';
import { PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { LOCAL_CREDENTIALS } from '../../tools/local-servers.js';
import { loadServiceConfig, type ServiceConfig } from '../../src/service/run-config.js';
import { AnomalyService, type ServiceOptions, type ServiceResult } from '../../src/service/service.js';
import { DetectionBatch } from '../../src/detect/detector.js';
import { createRecordDetector } from '../../src/detect/detector-host.js';
import { localAwsConfig, readWholeStream, startKinesalite, text, type LocalServer } from '../support/local-aws.js';
import { createKinesisClient } from '../../src/aws/clients.js';
import { afterAll, beforeAll } from 'vitest';
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

/** Puts raw record bodies (strings or bytes) with the given partition keys, 500 per call. */
export async function putRaw(client: KinesisClient, stream: string, records: { data: string | Uint8Array; partitionKey: string }[]): Promise<void> {
  for (let i = 0; i < records.length; i += 500) {
    const chunk = records.slice(i, i + 500);
    const res = await client.send(
      new PutRecordsCommand({
        StreamName: stream,
        Records: chunk.map((r) => ({ PartitionKey: r.partitionKey, Data: typeof r.data === 'string' ? enc.encode(r.data) : r.data })),
      }),
    );
    if (res.FailedRecordCount) throw new Error(`setup PutRecords had ${res.FailedRecordCount} failures`);
  }
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
    local.kinesis = createKinesisClient(localAwsConfig({ kinesis: local.kinesalite.endpoint }));
    local.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    local.kinesis?.destroy();
    await local.kinesalite?.stop();
    if (local.dir) rmSync(local.dir, { recursive: true, force: true });
  });
  return local;
}
