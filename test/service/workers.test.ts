/**
 * `run --workers N` (the built service, node dist/src/cli/main.js, against kinesalite): the
 * models of each shard live on one of N worker threads. On a 2-shard stream (the two
 * shards' models land on different workers of 2):
 * - unkeyed and keyed within a shard, --workers 2 gives every recordId the score of --workers 1,
 *   and so does the default (no --workers: one thread per shard, up to the cores);
 * - a run with --workers 2 SIGKILLed after a checkpoint and restarted, with --workers 2 or
 *   with --workers 1 (the checkpoint format is the same), loses no record and gives every
 *   recordId the score of an uninterrupted --workers 1 run;
 * - --workers above 1 is refused with a model scope that spans shards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { requireBuilt, runCli } from '../cli/cli-support.js';
import {
  createStream,
  finishService,
  killAt,
  killSpawnedServices,
  testClientConfig,
  putRaw,
  scoresOf,
  spawnService,
  startKinesalite,
  type LocalServer,
  type OutputRecord,
  type ServiceProcess,
} from './support.js';

const RECORDS = 4000;

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let dir: string;

beforeAll(async () => {
  requireBuilt();
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-workers-'));
  const random = mulberry32(91);
  const records = [...temperatureRecords({ count: RECORDS, seed: 17 })];
  await createStream(kinesis, 'w-unkeyed', 2);
  await putRaw(kinesis, 'w-unkeyed', records.map((r) => ({ data: JSON.stringify(r), partitionKey: `pk-${Math.floor(random() * 1e9)}` })));
  // Keyed within a shard: the key is the partition key, so each key lives in one shard.
  await createStream(kinesis, 'w-keyed', 2);
  await putRaw(
    kinesis,
    'w-keyed',
    records.map((r, i) => {
      const sensor = `sensor-${(i * 7) % 13}`;
      return { data: JSON.stringify({ ...r, sensor }), partitionKey: sensor };
    }),
  );
}, 60_000);

afterAll(async () => {
  killSpawnedServices();
  kinesis?.destroy();
  await kinesalite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startRun(input: string, output: string, checkpoint: string, extra: string[]): ServiceProcess {
  return spawnService([
    '--input-stream', input, '--output-stream', output, '--kinesis-endpoint', kinesalite.endpoint,
    '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--time-field', 'time', '--sample-size', '64', '--trees', '30',
    '--checkpoint', `file:${join(dir, checkpoint)}`, '--checkpoint-records', '300', '--checkpoint-interval', '0.2',
    '--get-records-limit', '200', '--poll-interval-ms', '200', '--idle-poll-ms', '200', '--exit-when-idle', '0.6',
    '--stats-interval', '0.05', ...extra,
  ]);
}

const finish = (run: ServiceProcess): Promise<void> => finishService(run, 90_000);

function differences(a: Map<string, OutputRecord>, b: Map<string, OutputRecord>): string[] {
  return [...a].filter(([id, o]) => b.get(id)?.score !== o.score || b.get(id)?.anomaly !== o.anomaly).map(([id]) => id);
}

let unkeyedReference: Map<string, OutputRecord>;

/** What the default --workers must be on this 2-shard stream: one per shard, up to the cores (src/service/worker-count.ts). */
const DEFAULT_WORKERS = Math.min(availableParallelism(), 8, 2);

describe('run --workers', () => {
  for (const [input, extra, counts] of [
    ['w-unkeyed', [], ['1', '2', 'default']],
    ['w-keyed', ['--key-field', 'sensor'], ['1', '2']],
  ] as const) {
    it(`gives every recordId the score of --workers 1 with ${counts.slice(1).join(' and ')} (${input})`, async () => {
      // All runs at once: their own output streams and checkpoint files.
      const runs = await Promise.all(
        counts.map(async (workers) => {
          const out = `${input}-out-${workers}`;
          await createStream(kinesis, out, 1);
          const run = startRun(input, out, `${out}.ckpt`, [...extra, ...(workers === 'default' ? [] : ['--workers', workers])]);
          await finish(run);
          if (workers === '2') expect(run.stderr()).toMatch(/"msg":"scoring on worker threads","workers":2,"chosen":"option"/);
          if (workers === 'default') {
            // No --workers: as many threads as shards, up to the cores; one core means this thread.
            if (DEFAULT_WORKERS > 1) expect(run.stderr()).toContain(`"msg":"scoring on worker threads","workers":${DEFAULT_WORKERS},"chosen":"default"`);
            else expect(run.stderr()).not.toMatch(/scoring on worker threads/);
          }
          if (workers === '1') expect(run.stderr()).not.toMatch(/scoring on worker threads/);
          return scoresOf(kinesis, out);
        }),
      );
      const [one, ...others] = runs as [Map<string, OutputRecord>, ...Map<string, OutputRecord>[]];
      expect(one.size).toBe(RECORDS);
      expect([...one.values()].some((o) => o.anomaly)).toBe(true);
      for (const other of others) {
        expect(other.size).toBe(RECORDS);
        expect(differences(one, other)).toEqual([]);
      }
      if (input === 'w-unkeyed') unkeyedReference = one;
    }, 240_000);
  }

  for (const restartWorkers of ['2', '1']) {
    // it.concurrent: both kill tests at once (own output streams and checkpoints), after the
    // tests above (vitest runs adjacent concurrent tests as one group, in order).
    it.concurrent(`loses nothing when SIGKILLed with --workers 2 and restarted with --workers ${restartWorkers}`, async () => {
      expect(unkeyedReference?.size).toBe(RECORDS);
      const out = `w-kill-${restartWorkers}`;
      await createStream(kinesis, out, 1);
      await killAt(startRun('w-unkeyed', out, `${out}.ckpt`, ['--workers', '2']), 1500);
      const restart = startRun('w-unkeyed', out, `${out}.ckpt`, ['--workers', restartWorkers]);
      await finish(restart);
      const killed = await scoresOf(kinesis, out);
      expect(killed.size).toBe(RECORDS);
      expect(differences(killed, unkeyedReference)).toEqual([]);
    }, 240_000);
  }

  it('refuses --workers above 1 with --model-scope stream or key', async () => {
    for (const scope of [['--model-scope', 'stream'], ['--model-scope', 'key', '--key-field', 'sensor']]) {
      const r = await runCli(['run', '--input-stream', 'w-unkeyed', ...scope, '--workers', '2']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--workers above 1 needs --model-scope shard/);
    }
  });
});
