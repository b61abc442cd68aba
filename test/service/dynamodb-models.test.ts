/**
 * Large model states in a DynamoDB checkpoint (dynalite): several keyed
 * default models (over one item's 400 KB) are saved in chunks and restored;
 * models that outgrow the store's limit stop the service BEFORE their output
 * is written, with a hint naming the s3: option.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient, createKinesisClient } from '../../src/aws/clients.js';
import { DynamoDbCheckpointStore } from '../../src/checkpoint/dynamodb-store.js';
import { mulberry32 } from '../../src/generate/temperature.js';
import { createStream, localAwsConfig, testClientConfig, putRaw, runToEnd, startDynalite, startKinesalite, type LocalServer } from './support.js';

let kinesalite: LocalServer;
let dynalite: LocalServer;
let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
const TABLE = 'rcf-big-models';

beforeAll(async () => {
  [kinesalite, dynalite] = await Promise.all([startKinesalite(), startDynalite()]);
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  dynamo = createDynamoDbClient(localAwsConfig({ dynamodb: dynalite.endpoint }));
  await DynamoDbCheckpointStore.createTable(dynamo, TABLE);
});

afterAll(async () => {
  kinesis?.destroy();
  dynamo?.destroy();
  await Promise.all([kinesalite?.stop(), dynalite?.stop()]);
});

/** `perKey` readings for each key, interleaved. */
function readings(keys: string[], perKey: number, from = 0): { data: string; partitionKey: string }[] {
  const random = mulberry32(from + 1);
  return Array.from({ length: perKey }, (_, t) =>
    keys.map((k) => ({ data: JSON.stringify({ sensor: k, time: from + t, value: 30 + 4 * random() }), partitionKey: k })),
  ).flat();
}

const store = (app: string, maxModelBytes?: number): DynamoDbCheckpointStore =>
  new DynamoDbCheckpointStore({ client: dynamo, tableName: TABLE, applicationName: app, ...(maxModelBytes !== undefined ? { maxModelBytes } : {}) });

describe('DynamoDB checkpoints with large model states (service)', () => {
  it('saves four keyed default models (over 400 KB) and resumes with them', async () => {
    await createStream(kinesis, 'big-in', 1);
    await putRaw(kinesis, 'big-in', readings(['a', 'b', 'c', 'd'], 600));
    const argv = [
      '--input-stream', 'big-in', '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--key-field', 'sensor',
      '--exit-when-idle', '0.5', '--get-records-limit', '1000',
    ];
    const r1 = await runToEnd(argv, 60_000, { store: store('big-app'), stdout: new PassThrough() });
    expect(r1.exitCode).toBe(0);
    expect(r1.stats.models).toBe(4);
    expect(r1.stats.checkpoints.lastModelBytes).toBeGreaterThan(400 * 1024);
    expect((await store('big-app').load())!.models!.byteLength).toBe(r1.stats.checkpoints.lastModelBytes);

    await putRaw(kinesis, 'big-in', readings(['a', 'b', 'c', 'd'], 10, 600));
    const r2 = await runToEnd(argv, 60_000, { store: store('big-app'), stdout: new PassThrough() });
    expect(r2.exitCode).toBe(0);
    expect(r2.stats.checkpoints.restoredModels).toBe(true);
    expect(r2.stats.recordsRead).toBe(40);
  });

  it('stops before writing the output of models that outgrow the store, naming the s3: option', async () => {
    await createStream(kinesis, 'toobig-in', 1);
    await putRaw(kinesis, 'toobig-in', readings(['k0', 'k1', 'k2', 'k3', 'k4', 'k5'], 50));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const r = await runToEnd(
      ['--input-stream', 'toobig-in', '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--key-field', 'sensor', '--emit', 'all', '--exit-when-idle', '0.5', '--get-records-limit', '1000'],
      60_000,
      { store: store('toobig-app', 500_000), stdout: out },
    );
    expect(r.exitCode).toBe(1);
    expect(r.reason).toMatch(/^the models would take about [\d.]+ MB at the next checkpoint \(6 models of about \d+ KB\), more than .* can keep \(0\.5 MB\); stopped before writing their output\. Use --checkpoint s3:BUCKET\[\/PREFIX\]\/APP/);
    expect(text).toBe(''); // nothing written for records whose models could not be saved
    expect(r.stats.checkpoints.saved).toBe(0);
    expect(await store('toobig-app').load()).toBeUndefined();
  });
});
