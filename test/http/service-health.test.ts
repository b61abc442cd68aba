/**
 * /healthz during a real `run` whose checkpoint store goes down: DynamoDB (dynalite) behind
 * the fault proxy answers every PutItem with 500 for a while. After 3 failed saves in a row
 * /healthz is 503 with that reason; once saves succeed again it is 200. Scoring never stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient, createKinesisClient } from '../../src/aws/clients.js';
import { DynamoDbCheckpointStore } from '../../src/checkpoint/index.js';
import { LiveServer } from '../../src/http/live-server.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createStream, localAwsConfig, testClientConfig, putRaw, startDynalite, startKinesalite, startService, waitFor, type LocalServer } from '../service/support.js';

let kinesalite: LocalServer;
let dynalite: LocalServer;
let proxy: FaultProxy;
let kinesis: KinesisClient;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  [kinesalite, dynalite] = await Promise.all([startKinesalite(), startDynalite()]);
  proxy = await startFaultProxy({ target: dynalite.endpoint });
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  dynamo = createDynamoDbClient(localAwsConfig({ dynamodb: dynalite.endpoint }));
});

afterAll(async () => {
  kinesis?.destroy();
  dynamo?.destroy();
  await proxy?.close();
  await Promise.all([kinesalite?.stop(), dynalite?.stop()]);
});

const readings = (from: number, n: number): { data: string; partitionKey: string }[] =>
  Array.from({ length: n }, (_, i) => ({ data: JSON.stringify({ value: 30 + Math.sin((from + i) / 9) }), partitionKey: 'p' }));

describe('/healthz with a failing checkpoint store', () => {
  it('turns 503 after 3 failed saves in a row and 200 again after a good one', async () => {
    const stream = 'health-in';
    await createStream(kinesis, stream, 1);
    await DynamoDbCheckpointStore.createTable(dynamo, 'health-checkpoints');
    const live = await LiveServer.start({ host: '127.0.0.1', port: 0, health: { maxCheckpointFailures: 3 } });
    const { service } = await startService(
      ['--input-stream', stream, '--kinesis-endpoint', kinesalite.endpoint, '--dynamodb-endpoint', proxy.endpoint, '--checkpoint', 'dynamodb:health-checkpoints/app',
        '--checkpoint-interval', '0.2', '--start-position', 'TRIM_HORIZON', '--log-level', 'error'],
      { observer: live, stdout: new PassThrough().resume() },
    );
    const health = async (): Promise<{ status: number; body: { ok: boolean; reasons: string[] } }> => {
      const res = await fetch(`${live.url}/healthz`);
      return { status: res.status, body: (await res.json()) as { ok: boolean; reasons: string[] } };
    };
    try {
      await putRaw(kinesis, stream, readings(0, 300));
      await waitFor(() => service.stats().checkpoints.saved >= 1 && service.stats().recordsScored === 300, 30_000, 'a first checkpoint');
      expect((await health()).status).toBe(200);

      proxy.setRules([{ target: 'PutItem', fault: 'internal' }]);
      const saved = service.stats().checkpoints.saved;
      await putRaw(kinesis, stream, readings(300, 300));
      await waitFor(async () => (await health()).status === 503, 60_000, '/healthz 503');
      const down = await health();
      expect(down.body.reasons.join()).toMatch(/^the last \d+ checkpoint saves failed$/);
      const s = service.stats();
      expect(s.checkpoints.saved).toBe(saved);
      expect(s.checkpoints.failed).toBeGreaterThanOrEqual(3);
      // Scoring went on.
      await waitFor(() => service.stats().recordsScored === 600, 30_000, 'records scored while the store is down');

      proxy.setRules([]);
      await waitFor(() => service.stats().checkpoints.saved > saved, 60_000, 'a checkpoint once the store is back');
      expect((await health()).status).toBe(200);
    } finally {
      service.stop();
      await service.done;
      await live.close();
    }
  });
});
