/**
 * Crash test: the built service (node dist/src/cli/main.js run) is killed with
 * SIGKILL at seeded points and restarted from its file checkpoint. Compared
 * with an uninterrupted run over the same records, no input record may be
 * missing from the scored output, duplicates (records after the checkpoint,
 * scored again) must carry the same record id, and every score — before and
 * after the restart — must equal the uninterrupted run's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { mulberry32, temperatureRecords } from '../../src/generate/temperature.js';
import { requireBuilt } from '../cli/cli-support.js';
import { createStream, finishService, killAt, killSpawnedServices, testClientConfig, putRaw, readOutput, spawnService, startKinesalite, type LocalServer, type OutputRecord, type ServiceProcess } from './support.js';

const RECORDS = 4000;
const KILL_POINTS = 3;

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let dir: string;

beforeAll(async () => {
  try {
    requireBuilt();
  } catch (error) {
    throw new Error(`the crash test runs the built CLI; building it failed (npm run build):\n${(error as Error).message}`);
  }
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-crash-'));
  await createStream(kinesis, 'crash-in', 1);
  const records = [...temperatureRecords({ count: RECORDS, seed: 9 })];
  await putRaw(kinesis, 'crash-in', records.map((r) => ({ data: JSON.stringify(r), partitionKey: 'sensor-1' })));
});

afterAll(async () => {
  killSpawnedServices();
  kinesis?.destroy();
  await kinesalite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startRun(output: string, checkpoint: string): ServiceProcess {
  return spawnService([
    '--input-stream', 'crash-in', '--output-stream', output, '--kinesis-endpoint', kinesalite.endpoint,
    '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--time-field', 'time', '--threshold', 'auto', '--shingle', '4',
    '--checkpoint', `file:${join(dir, checkpoint)}`, '--checkpoint-records', '400', '--checkpoint-interval', '0.3',
    '--get-records-limit', '250', '--idle-poll-ms', '200', '--exit-when-idle', '0.6', '--stats-interval', '0.05',
  ]);
}

describe('crash and restart (SIGKILL)', () => {
  it(`loses no record and reproduces every score at ${KILL_POINTS} seeded kill points`, async () => {
    // The uninterrupted run and the kill-and-restart runs use their own output streams and
    // checkpoint files, so they run at the same time; only the comparison waits for all.
    const random = mulberry32(20240501);
    // Somewhere after the first checkpoint and before the end.
    const points = Array.from({ length: KILL_POINTS }, () => 500 + Math.floor(random() * (RECORDS - 1500)));
    const reference = (async () => {
      await createStream(kinesis, 'crash-ref', 1);
      await finishService(startRun('crash-ref', 'ref.ckpt'), 30_000);
      const ref = new Map<string, OutputRecord>();
      for (const o of await readOutput(kinesis, 'crash-ref')) ref.set(o.recordId, o);
      return ref;
    })();
    const crashes = points.map(async (point, k) => {
      const stream = `crash-out-${k}`;
      await createStream(kinesis, stream, 1);
      const killedAt = await killAt(startRun(stream, `kill-${k}.ckpt`), point);
      const second = startRun(stream, `kill-${k}.ckpt`);
      await finishService(second, 30_000);
      return { killedAt, final: second.final(), out: await readOutput(kinesis, stream) };
    });
    const [ref, ...runs] = await Promise.all([reference, ...crashes]);
    expect(ref.size).toBe(RECORDS);
    expect([...ref.values()].filter((o) => o.anomaly).length).toBeGreaterThan(0);

    for (const [k, { killedAt, final, out }] of runs.entries()) {
      expect(final?.checkpoints.restoredModels).toBe(true);
      const seen = new Map<string, number>();
      for (const o of out) {
        const r = ref.get(o.recordId);
        expect(r, `unknown record id ${o.recordId}`).toBeDefined();
        // Same record id, same score, grade and decision as without the crash.
        expect([o.time, o.score, o.grade, o.anomaly]).toEqual([r!.time, r!.score, r!.grade, r!.anomaly]);
        seen.set(o.recordId, (seen.get(o.recordId) ?? 0) + 1);
      }
      const missing = [...ref.keys()].filter((id) => !seen.has(id));
      expect(missing).toEqual([]);
      const duplicates = out.length - seen.size;
      expect(duplicates).toBeLessThanOrEqual(final!.recordsRead);
      console.log(
        `[crash ${k}] killed at ${killedAt.outputRecords} output records (${killedAt.checkpoints.saved} checkpoints saved); ` +
          `restart re-read ${final!.recordsRead} records; ${out.length} output records, ${seen.size} distinct, ${duplicates} duplicates, 0 missing, all scores equal`,
      );
    }
  }, 90_000);
});
