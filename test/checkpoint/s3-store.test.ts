import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError, errorMessage } from '../../src/aws/retry.js';
import { DynamoDbCheckpointStore } from '../../src/checkpoint/dynamodb-store.js';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createDynamoDbClient, createS3Client } from '../../src/aws/clients.js';
import { S3CheckpointStore } from '../../src/checkpoint/s3-store.js';
import { CheckpointCorruptError, type Checkpoint } from '../../src/checkpoint/checkpoint-store.js';
import { localAwsConfig, motoServerUnavailableReason, startMotoServer, type LocalServer } from '../support/local-aws.js';

const skipReason = motoServerUnavailableReason();
if (skipReason) console.warn(`[skip] S3 checkpoint store tests: ${skipReason}`);

let moto: LocalServer | undefined;
let s3: S3Client;
const BUCKET = 'rcf-checkpoints';

beforeAll(async () => {
  if (skipReason) return;
  moto = await startMotoServer();
  s3 = createS3Client(localAwsConfig({ s3: moto.endpoint }));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
});

// Larger than a DynamoDB item could hold: S3 is the store for big models.
const models = Uint8Array.from({ length: 2 * 1024 * 1024 }, (_, i) => (i * 131) % 256);
const cp = (n: number, m?: Uint8Array): Checkpoint => ({
  shards: {
    'shardId-000000000000': { sequenceNumber: String(5000 + n) },
    'shardId-000000000001': { sequenceNumber: 'SHARD_END', ended: true },
  },
  updatedAt: new Date(1_700_000_000_000 + n).toISOString(),
  ...(m ? { models: m } : {}),
});

describe.skipIf(skipReason !== undefined)('S3CheckpointStore (moto_server)', () => {
  it('returns undefined before the first save, then round-trips positions and large binary models', async () => {
    const store = new S3CheckpointStore({ client: s3, bucket: BUCKET, applicationName: 'app-s3' });
    expect(await store.load()).toBeUndefined();
    await store.save(cp(1, models));
    const back = await store.load();
    expect(back!.shards).toEqual(cp(1).shards);
    expect(Buffer.from(back!.models!).equals(Buffer.from(models))).toBe(true);
    await store.save(cp(2));
    expect(await store.load()).toEqual(cp(2));
  });

  it('reports a corrupt object clearly', async () => {
    const store = new S3CheckpointStore({ client: s3, bucket: BUCKET, applicationName: 'app-corrupt' });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: store.key, Body: 'this is not a checkpoint at all, just some text' }));
    const err = await store.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointCorruptError);
    expect((err as Error).message).toMatch(/s3:\/\/rcf-checkpoints\/rcf-stream\/checkpoints\/app-corrupt\.ckpt is corrupt: not an rcf-stream checkpoint/);
  });

  it('rejects application names that would escape the prefix', () => {
    expect(() => new S3CheckpointStore({ client: s3, bucket: BUCKET, applicationName: '../other' })).toThrow(/applicationName/);
  });
});

describe('checkpoint stores behind an endpoint that answers 503 without a body', () => {
  it('say which call failed and how (status), not "Unknown: UnknownError", and stay retryable', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(503);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = createS3Client({ ...localAwsConfig({ s3: endpoint }), maxAttempts: 1 });
    const ddb = createDynamoDbClient({ ...localAwsConfig({ dynamodb: endpoint }), maxAttempts: 1 });
    try {
      const store = new S3CheckpointStore({ client, bucket: 'b', applicationName: 'app' });
      const saveErr = await store.save(cp(1)).catch((e: unknown) => e);
      expect(errorMessage(saveErr)).toBe('S3 PutObject s3://b/rcf-stream/checkpoints/app.ckpt: HTTP 503 Service Unavailable without error details in the response');
      expect(classifyError(saveErr)).toBe('retryable');
      const loadErr = await store.load().catch((e: unknown) => e);
      expect(errorMessage(loadErr)).toMatch(/^S3 GetObject s3:\/\/b\/rcf-stream\/checkpoints\/app\.ckpt: HTTP 503 Service Unavailable/);
      const dynamo = new DynamoDbCheckpointStore({ client: ddb, tableName: 't', applicationName: 'app' });
      expect(errorMessage(await dynamo.load().catch((e: unknown) => e))).toBe('DynamoDB GetItem dynamodb://t/app: HTTP 503 Service Unavailable without error details in the response');
    } finally {
      client.destroy();
      ddb.destroy();
      server.close();
    }
  });
});
