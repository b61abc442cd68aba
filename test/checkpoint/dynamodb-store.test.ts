import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionalCheckFailedException, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient } from '../../src/aws/clients.js';
import { DynamoDbCheckpointStore } from '../../src/checkpoint/dynamodb-store.js';
import { CheckpointConflictError, CheckpointCorruptError, type Checkpoint } from '../../src/checkpoint/checkpoint-store.js';
import { localAwsConfig, startDynalite, type LocalServer } from '../support/local-aws.js';

let dynalite: LocalServer;
let client: DynamoDBClient;
const TABLE = 'rcf-checkpoints';

beforeAll(async () => {
  dynalite = await startDynalite();
  client = createDynamoDbClient(localAwsConfig({ dynamodb: dynalite.endpoint }));
  await DynamoDbCheckpointStore.createTable(client, TABLE);
});

afterAll(async () => {
  client?.destroy();
  await dynalite?.stop();
});

const models = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) % 256);
const cp = (n: number, m?: Uint8Array): Checkpoint => ({
  shards: { 'shardId-000000000000': { sequenceNumber: String(1000 + n) }, 'shardId-000000000001': { sequenceNumber: 'TRIM_HORIZON' } },
  updatedAt: new Date(1_700_000_000_000 + n).toISOString(),
  ...(m ? { models: m } : {}),
});

const store = (app: string): DynamoDbCheckpointStore => new DynamoDbCheckpointStore({ client, tableName: TABLE, applicationName: app });

describe('DynamoDbCheckpointStore (dynalite)', () => {
  it('round-trips positions and binary models, bumping the version on every save', async () => {
    const s = store('app-roundtrip');
    expect(await s.load()).toBeUndefined();
    await s.save(cp(1, models));
    expect(s.currentVersion).toBe(1);
    await s.save(cp(2, models));
    expect(s.currentVersion).toBe(2);
    const fresh = store('app-roundtrip');
    expect(await fresh.load()).toEqual(cp(2, models));
    expect(fresh.currentVersion).toBe(2);
    await fresh.save(cp(3));
    expect(await store('app-roundtrip').load()).toEqual(cp(3));
    await fresh.save(cp(4, new Uint8Array(0)));
    expect((await store('app-roundtrip').load())!.models).toEqual(new Uint8Array(0));
    await fresh.save({ ...cp(5), stream: 'arn:aws:kinesis:us-east-1:123456789012:stream/in' });
    expect((await store('app-roundtrip').load())!.stream).toBe('arn:aws:kinesis:us-east-1:123456789012:stream/in');
  });

  it('detects a second writer with a conditional write', async () => {
    const a = store('app-conflict');
    const b = store('app-conflict');
    await a.load();
    await b.load();
    await a.save(cp(1));
    const err = await b.save(cp(2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointConflictError);
    expect((err as Error).message).toMatch(/changed by another writer \(expected version 0, found version 1\).* application name "app-conflict"/);
    // Once fenced, it stays fenced.
    await expect(b.save(cp(2))).rejects.toThrow(CheckpointConflictError);
    // The first writer's checkpoint is intact and it can go on.
    expect(await store('app-conflict').load()).toEqual(cp(1));
    await a.save(cp(3));
    expect(await store('app-conflict').load()).toEqual(cp(3));
  });

  it('a store that never loaded may only create the checkpoint, not overwrite one', async () => {
    const first = store('app-blind');
    await first.save(cp(1)); // nothing there yet: allowed without load()
    const second = store('app-blind');
    await expect(second.save(cp(2))).rejects.toThrow(/expected version 0, found version 1/);
    await expect(second.save(cp(2))).rejects.toThrow(/call load\(\) to take it over deliberately/);
    expect(await second.load()).toEqual(cp(1));
    await second.save(cp(2));
    expect(second.currentVersion).toBe(2);
    await expect(first.save(cp(3))).rejects.toThrow(CheckpointConflictError);
  });

  it('recognises its own write when the response was lost and the retry hit the condition', async () => {
    // Stub DynamoDB: the PutItem lands, but the caller sees ConditionalCheckFailed (as after an SDK retry).
    let stored: Record<string, unknown> | undefined;
    const stub = {
      send: async (cmd: { constructor: { name: string }; input: { Item?: Record<string, unknown> } }) => {
        if (cmd.constructor.name === 'GetItemCommand') return { Item: stored };
        stored = cmd.input.Item;
        throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
      },
    } as unknown as DynamoDBClient;
    const s = new DynamoDbCheckpointStore({ client: stub, tableName: 't', applicationName: 'lost-response' });
    await s.save(cp(1));
    expect(s.currentVersion).toBe(1);
  });

  it('refuses models over 350 KB with a hint to use S3', async () => {
    const s = store('app-big');
    await expect(s.save(cp(1, new Uint8Array(350 * 1024 + 1)))).rejects.toThrow(/358401 bytes.*S3 checkpoint store/);
    await s.save(cp(1, new Uint8Array(300 * 1024).fill(1)));
    expect((await store('app-big').load())!.models!.byteLength).toBe(300 * 1024);
  });

  it('reports a corrupt item clearly', async () => {
    await client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { app: { S: 'app-corrupt' }, version: { N: '3' }, updatedAt: { S: new Date().toISOString() }, shards: { S: '{not json' } },
      }),
    );
    await expect(store('app-corrupt').load()).rejects.toThrow(CheckpointCorruptError);
    await expect(store('app-corrupt').load()).rejects.toThrow(/dynamodb:\/\/rcf-checkpoints\/app-corrupt is corrupt: shards is not JSON/);
    await client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { app: { S: 'app-corrupt2' }, version: { N: '1' }, updatedAt: { S: new Date().toISOString() }, shards: { S: '{}' }, modelsLength: { N: '10' }, models: { B: new Uint8Array(4) } },
      }),
    );
    await expect(store('app-corrupt2').load()).rejects.toThrow(/models has 4 bytes, expected 10/);
  });
});
