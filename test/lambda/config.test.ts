/** The Lambda handler's configuration: run's RCF_* variables, the S3 state location, SDK endpoint variables. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_STATE_PREFIX, loadLambdaConfig, parseStateLocation } from '../../src/lambda/config.js';

describe('Lambda configuration', () => {
  it('reads the state location as s3:BUCKET[/PREFIX]', () => {
    expect(parseStateLocation('s3:my-bucket')).toEqual({ bucket: 'my-bucket', prefix: DEFAULT_STATE_PREFIX });
    expect(parseStateLocation('s3:my-bucket/teams/a/')).toEqual({ bucket: 'my-bucket', prefix: 'teams/a/' });
    expect(() => parseStateLocation(undefined)).toThrow(/RCF_CHECKPOINT is required/);
    expect(() => parseStateLocation('file:./x')).toThrow(/s3:BUCKET\[\/PREFIX\]/);
    expect(() => parseStateLocation('s3:Bad_Bucket')).toThrow(/not an S3 bucket name/);
    expect(() => parseStateLocation('s3:bucket/a//b')).toThrow(/empty segments/);
  });

  it("takes run's detection settings and defaults", async () => {
    const plain = await loadLambdaConfig({ RCF_CHECKPOINT: 's3:b-1' });
    expect(plain.service.detect.forest.numberOfTrees).toBe(50);
    expect(plain.service.detect.threshold).toEqual({ kind: 'fixed', value: 3 });
    expect(plain.service.emit).toBe('anomalies');
    expect(plain.service.output).toBeUndefined();
    const set = await loadLambdaConfig({
      RCF_CHECKPOINT: 's3:b-1',
      RCF_TREES: '30',
      RCF_KEY_FIELD: 'sensor',
      RCF_THRESHOLD: 'auto',
      RCF_EMIT: 'all',
      RCF_OUTPUT_STREAM: 'arn:aws:kinesis:eu-west-1:123456789012:stream/out',
    });
    expect(set.service.detect.forest.numberOfTrees).toBe(30);
    expect(set.service.detect.mapping.keyField).toBe('sensor');
    expect(set.service.detect.threshold.kind).toBe('quality');
    expect(set.service.output).toEqual({ streamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/out' });
    await expect(loadLambdaConfig({ RCF_CHECKPOINT: 's3:b-1', RCF_TREES: '0' })).rejects.toThrow(/^invalid RCF_\* setting: RCF_TREES must be between 1 and 1000, got 0$/);
  });

  it("refuses run's settings that the event source mapping decides, naming each", async () => {
    await expect(loadLambdaConfig({ RCF_CHECKPOINT: 's3:b-1', RCF_START_POSITION: 'LATEST', RCF_DEAD_LETTER: '/tmp/x' })).rejects.toThrow(
      /RCF_START_POSITION \(.*StartingPosition.*RCF_DEAD_LETTER \(.*RCF_DEAD_LETTER_STREAM/,
    );
  });

  it("takes endpoints from the SDK's AWS_ENDPOINT_URL variables, the service-specific one first", async () => {
    const c = await loadLambdaConfig({
      RCF_CHECKPOINT: 's3:b-1',
      RCF_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:2',
      AWS_ENDPOINT_URL_KINESIS: 'http://127.0.0.1:3',
    });
    expect(c.aws.endpoints).toEqual({ kinesis: 'http://127.0.0.1:3', sns: 'http://127.0.0.1:2', s3: 'http://127.0.0.1:2', dynamodb: 'http://127.0.0.1:1' });
    await expect(loadLambdaConfig({ RCF_CHECKPOINT: 's3:b-1', AWS_ENDPOINT_URL_S3: 'ftp://x' })).rejects.toThrow(/AWS_ENDPOINT_URL_S3 must be an http/);
  });
});
