import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionalCheckFailedException, DeleteItemCommand, PutItemCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
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

/** Keys of the chunk items of `app`, sorted. */
async function chunkKeys(app: string): Promise<string[]> {
  const keys: string[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    // A Scan page stops after 1 MB read: follow LastEvaluatedKey.
    const res = await client.send(
      new ScanCommand({
        TableName: TABLE,
        FilterExpression: 'begins_with(#k, :p)',
        ProjectionExpression: '#k',
        ExpressionAttributeNames: { '#k': 'app' },
        ExpressionAttributeValues: { ':p': { S: `${app}#chunk#` } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    keys.push(...(res.Items ?? []).map((i) => i['app']!.S!));
    start = res.LastEvaluatedKey;
  } while (start !== undefined);
  return keys.sort();
}

/** toEqual on megabytes of Uint8Array is slow (element by element): compare the models as buffers. */
function expectCheckpoint(got: Checkpoint | undefined, want: Checkpoint): void {
  const { models: gotModels, ...gotRest } = got ?? ({} as Checkpoint);
  const { models: wantModels, ...wantRest } = want;
  expect(gotRest).toEqual(wantRest);
  expect(gotModels).toBeInstanceOf(Uint8Array);
  expect(gotModels!.byteLength).toBe(wantModels!.byteLength);
  expect(Buffer.from(gotModels!).equals(Buffer.from(wantModels!))).toBe(true);
}

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

  it('keeps models over 350 KB in chunk items committed by the head: several keyed models fit', async () => {
    const s = store('app-big');
    // About what four keyed default models take (539,616 bytes were refused before).
    const four = Uint8Array.from({ length: 539_616 }, (_, i) => (i * 31 + 7) % 251);
    await s.save(cp(1, four));
    expect(await chunkKeys('app-big')).toHaveLength(2);
    expectCheckpoint(await store('app-big').load(), cp(1, four));
    const big = Uint8Array.from({ length: 1_500_000 }, (_, i) => (i * 13) % 256);
    await s.save(cp(2, big));
    const reloaded = store('app-big');
    expectCheckpoint(await reloaded.load(), cp(2, big));
    // The chunks of the replaced checkpoint are gone; only the current ones remain.
    expect(await chunkKeys('app-big')).toHaveLength(5);
    await reloaded.save(cp(3, new Uint8Array(300 * 1024).fill(1)));
    expect((await store('app-big').load())!.models!.byteLength).toBe(300 * 1024);
    expect(await chunkKeys('app-big')).toEqual([]);
  });

  it('refuses models over its limit with the s3: option in the hint', async () => {
    const s = new DynamoDbCheckpointStore({ client, tableName: TABLE, applicationName: 'app-limit', maxModelBytes: 1_000_000 });
    await expect(s.save(cp(1, new Uint8Array(1_000_001)))).rejects.toThrow(
      /^Model snapshot is 1000001 bytes; the DynamoDB checkpoint store dynamodb:\/\/rcf-checkpoints\/app-limit keeps at most 1000000 bytes\. Use an S3 checkpoint for models this large: --checkpoint s3:BUCKET\[\/PREFIX\]\/APP\.$/,
    );
    expect(s.modelByteLimit).toBe(1_000_000);
  });

  it('a save killed after writing chunks leaves the old checkpoint, and the next save removes the orphans', async () => {
    const models = Uint8Array.from({ length: 800_000 }, (_, i) => i % 199);
    await store('app-orphan').save(cp(1, models));
    // A client whose head write never happens (the process died right before it).
    const dying = {
      send: async (cmd: { constructor: { name: string }; input: { Item?: Record<string, { S?: string }> } }) => {
        if (cmd.constructor.name === 'PutItemCommand' && cmd.input.Item?.['version'] !== undefined) throw new Error('killed');
        return client.send(cmd as never);
      },
    } as unknown as DynamoDBClient;
    const victim = new DynamoDbCheckpointStore({ client: dying, tableName: TABLE, applicationName: 'app-orphan' });
    await victim.load();
    await expect(victim.save(cp(2, Uint8Array.from(models).reverse()))).rejects.toThrow('killed');
    expect(await chunkKeys('app-orphan')).toHaveLength(6); // 3 committed + 3 orphaned
    const restarted = store('app-orphan');
    expectCheckpoint(await restarted.load(), cp(1, models));
    await restarted.save(cp(3));
    expect(await chunkKeys('app-orphan')).toEqual([]);
  });

  it('a lost conflict deletes its own chunks; a missing chunk is reported as corruption', async () => {
    const a = store('app-chunk-conflict');
    const b = store('app-chunk-conflict');
    await a.load();
    await b.load();
    const models = new Uint8Array(400_000).fill(3);
    await a.save(cp(1, models));
    await expect(b.save(cp(2, models))).rejects.toThrow(CheckpointConflictError);
    const keys = await chunkKeys('app-chunk-conflict');
    expect(keys).toHaveLength(2);
    await client.send(new DeleteItemCommand({ TableName: TABLE, Key: { app: { S: keys[1]! } } }));
    await expect(store('app-chunk-conflict').load()).rejects.toThrow(/is corrupt: model chunk \d of 2 is missing/);
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
