import { describe, expect, it } from 'vitest';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createDynamoDbClient, createKinesisClient, createS3Client, createSnsClient, describeAwsConfig, redactUrl } from '../../src/aws/clients.js';

describe('AWS client factory', () => {
  it('points clients at endpoint overrides with HTTP/1.1 and path-style S3', async () => {
    const cfg = {
      region: 'eu-west-1',
      endpoints: { kinesis: 'http://127.0.0.1:4567', sns: 'http://127.0.0.1:5000', dynamodb: 'http://127.0.0.1:4568', s3: 'http://127.0.0.1:5000' },
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'very-secret' },
    };
    const kinesis = createKinesisClient(cfg);
    const s3 = createS3Client(cfg);
    const ddb = createDynamoDbClient({ ...cfg, maxAttempts: 7 });
    const sns = createSnsClient(cfg);
    try {
      const ep = await kinesis.config.endpoint!();
      expect(`${ep.protocol}//${ep.hostname}:${ep.port}`).toBe('http://127.0.0.1:4567');
      expect(await kinesis.config.region()).toBe('eu-west-1');
      expect(kinesis.config.requestHandler).toBeInstanceOf(NodeHttpHandler);
      expect(s3.config.forcePathStyle).toBe(true);
      // The stream classes retry themselves; the SDK must not stack retries under them.
      expect(await kinesis.config.maxAttempts()).toBe(1);
      expect(await sns.config.maxAttempts()).toBe(1);
      expect(await ddb.config.maxAttempts()).toBe(7);
    } finally {
      kinesis.destroy();
      s3.destroy();
      ddb.destroy();
      sns.destroy();
    }
  });

  it('keeps SDK defaults (HTTP/2 for Kinesis, virtual-hosted S3) without overrides', () => {
    const kinesis = createKinesisClient({ region: 'us-east-1' });
    const s3 = createS3Client({ region: 'us-east-1' });
    try {
      expect(kinesis.config.requestHandler).not.toBeInstanceOf(NodeHttpHandler);
      expect(s3.config.forcePathStyle).toBeFalsy();
    } finally {
      kinesis.destroy();
      s3.destroy();
    }
  });

  it('describes the config without secrets', () => {
    const text = describeAwsConfig({
      region: 'us-east-1',
      endpoints: { kinesis: 'http://127.0.0.1:1' },
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'very-secret' },
    });
    expect(text).toBe('region=us-east-1 kinesis=http://127.0.0.1:1 http=1.1 credentials=explicit');
    expect(text).not.toMatch(/AKID|secret/);
  });

  it('never logs a user name or password from an endpoint URL', () => {
    const text = describeAwsConfig({ region: 'us-east-1', endpoints: { kinesis: 'http://admin:hunter2@127.0.0.1:4567', s3: 'https://minio.local:9000/?token=abc' } });
    expect(text).toBe('region=us-east-1 kinesis=http://***@127.0.0.1:4567 s3=https://minio.local:9000/?token=*** http=1.1 credentials=default chain');
    expect(text).not.toMatch(/admin|hunter2|abc/);
    expect(redactUrl('http://127.0.0.1:4567')).toBe('http://127.0.0.1:4567');
    expect(redactUrl('http://user@host:1/path')).toBe('http://***@host:1/path');
    expect(redactUrl('not a url:pw@host')).toBe('***@host');
  });
});
