import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import { envName, loadServiceConfig, parseCheckpointSpec, parsePartitionKeySpec, type ServiceConfig } from '../../src/service/run-config.js';

async function load(argv: string[], env: Record<string, string> = {}, file?: unknown): Promise<ServiceConfig> {
  const config = await loadServiceConfig(argv, {
    env,
    readTextFile: async () => (typeof file === 'string' ? file : JSON.stringify(file)),
  });
  if (config === undefined) throw new Error('help');
  return config;
}

async function usage(argv: string[], env: Record<string, string> = {}, file?: unknown): Promise<string> {
  try {
    await load(argv, env, file);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('run configuration', () => {
  it('has the documented defaults', async () => {
    const c = await load(['--input-stream', 'In-RCFData-Stream']);
    expect(c.input).toEqual({ streamName: 'In-RCFData-Stream' });
    expect(c.output).toBeUndefined();
    expect(c.startPosition).toEqual({ type: 'LATEST' });
    // Named after the input stream: apps for two streams started in one directory never share a checkpoint.
    expect(c.checkpoint).toEqual({ kind: 'file', path: './rcf-stream-In-RCFData-Stream.checkpoint' });
    expect(c.checkpointRecords).toBe(10_000);
    expect(c.checkpointIntervalMs).toBe(60_000);
    expect(c.emit).toBe('anomalies');
    expect(c.outputPartitionKey).toEqual({ kind: 'key' });
    expect(c.sns).toEqual({ subject: 'Anomaly detected', ratePerWindow: 10, windowMs: 60_000, maxQueue: 1000 });
    expect(c.aws).toEqual({});
    // detect's defaults, from detect's own parser.
    expect(c.detect.mapping.fields).toEqual(['value']);
    expect(c.detect.forest).toMatchObject({ dimensions: 1, numberOfTrees: 50, sampleSize: 256, shingleSize: 1, engine: 'wasm' });
    expect(c.detect.threshold).toEqual({ kind: 'fixed', value: 3 });
  });

  it('accepts the reference scenario property names in the JSON file, and endpoint keys', async () => {
    const c = await load(['--config', 'app.json'], {}, {
      inputStreamName: 'In-RCFData-Stream',
      outputStreamName: 'Out-RCFData-Stream',
      snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:anomaly_detection',
      region: 'eu-west-1',
      endpointUrl: 'http://127.0.0.1:4566',
      snsEndpointUrl: 'http://127.0.0.1:5000',
      fields: ['a', 'b'],
      numberOfTrees: 30,
      shingleSize: 4,
      explain: true,
      http1: true,
    });
    expect(c.input).toEqual({ streamName: 'In-RCFData-Stream' });
    expect(c.output).toEqual({ streamName: 'Out-RCFData-Stream' });
    expect(c.snsTopicArn).toBe('arn:aws:sns:us-east-1:123456789012:anomaly_detection');
    expect(c.aws).toEqual({
      region: 'eu-west-1',
      http1: true,
      endpoints: { kinesis: 'http://127.0.0.1:4566', sns: 'http://127.0.0.1:5000', dynamodb: 'http://127.0.0.1:4566', s3: 'http://127.0.0.1:4566' },
    });
    expect(c.detect.mapping.fields).toEqual(['a', 'b']);
    expect(c.detect.forest).toMatchObject({ dimensions: 2, numberOfTrees: 30, shingleSize: 4 });
    expect(c.detect.explain).toBe(true);
  });

  it('lets flags win over the environment, and the environment over the file', async () => {
    expect(envName('input-stream')).toBe('RCF_INPUT_STREAM');
    const file = { inputStreamName: 'from-file', outputStreamName: 'out-file', trees: 10, emit: 'all' };
    const env = { RCF_INPUT_STREAM: 'from-env', RCF_TREES: '20', RCF_CONFIG: 'app.json', RCF_STATS_JSON: 'true' };
    const c = await load(['--trees', '40'], env, file);
    expect(c.input.streamName).toBe('from-env');
    expect(c.output?.streamName).toBe('out-file');
    expect(c.detect.forest.numberOfTrees).toBe(40);
    expect(c.emit).toBe('all');
    expect(c.statsJson).toBe(true);
  });

  it('reads stream ARNs, start positions, per-service endpoints and the operational options', async () => {
    const c = await load([
      '--input-stream', 'arn:aws:kinesis:us-east-1:123456789012:stream/in',
      '--output-stream', 'out',
      '--start-position', 'at_timestamp',
      '--start-timestamp', '2024-05-01T00:00:00Z',
      '--kinesis-endpoint', 'http://127.0.0.1:4567',
      '--dynamodb-endpoint', 'http://127.0.0.1:8000',
      '--checkpoint', 'dynamodb:rcf-checkpoints/sensor-app',
      '--checkpoint-records', '500',
      '--checkpoint-interval', '2.5',
      '--output-partition-key', 'field:sensor',
      '--sns-rate', '5', '--sns-window', '10', '--sns-queue', '50', '--sns-subject', 'Alarm',
      '--exit-when-idle', '3',
      '--threshold', 'auto', '--parity', 'aws', '--key-field', 'sensor', '--max-keys', '100',
    ]);
    expect(c.input).toEqual({ streamArn: 'arn:aws:kinesis:us-east-1:123456789012:stream/in' });
    expect(c.startPosition).toEqual({ type: 'AT_TIMESTAMP', timestamp: new Date('2024-05-01T00:00:00Z') });
    expect(c.aws.endpoints).toEqual({ kinesis: 'http://127.0.0.1:4567', dynamodb: 'http://127.0.0.1:8000' });
    expect(c.checkpoint).toEqual({ kind: 'dynamodb', table: 'rcf-checkpoints', app: 'sensor-app' });
    expect(c.checkpointRecords).toBe(500);
    expect(c.checkpointIntervalMs).toBe(2500);
    expect(c.outputPartitionKey).toEqual({ kind: 'field', name: 'sensor' });
    expect(c.sns).toEqual({ subject: 'Alarm', ratePerWindow: 5, windowMs: 10_000, maxQueue: 50 });
    expect(c.exitWhenIdleMs).toBe(3000);
    expect(c.detect.threshold).toEqual({ kind: 'trcf' });
    expect(c.detect.mapping.keyField).toBe('sensor');
    expect(c.detect.maxKeys).toBe(100);
  });

  it('parses checkpoint locations', () => {
    expect(parseCheckpointSpec('file:/var/lib/rcf.ckpt')).toEqual({ kind: 'file', path: '/var/lib/rcf.ckpt' });
    expect(parseCheckpointSpec('state/rcf.ckpt')).toEqual({ kind: 'file', path: 'state/rcf.ckpt' });
    expect(parseCheckpointSpec('none')).toEqual({ kind: 'none' });
    expect(parseCheckpointSpec('s3:my-bucket/app1')).toEqual({ kind: 's3', bucket: 'my-bucket', app: 'app1' });
    expect(parseCheckpointSpec('s3:my-bucket/teams/ml/app1')).toEqual({ kind: 's3', bucket: 'my-bucket', app: 'app1', prefix: 'teams/ml/' });
    expect(() => parseCheckpointSpec('dynamodb:table')).toThrow(/dynamodb:TABLE\/APP/);
    expect(() => parseCheckpointSpec('dynamodb:a/b/c')).toThrow(/dynamodb:TABLE\/APP/);
    expect(() => parseCheckpointSpec('s3:bucket/')).toThrow(/s3:BUCKET/);
    // A typo of a scheme is an error, not a local file named after it; a path with a colon says file:.
    expect(() => parseCheckpointSpec('dynamo:tbl/app')).toThrow(/unknown checkpoint scheme "dynamo:".*file:, dynamodb:, s3: or none.*file:dynamo:tbl\/app/);
    expect(() => parseCheckpointSpec('S3:bucket/app')).toThrow(/unknown checkpoint scheme "S3:"/);
    expect(parseCheckpointSpec('file:dynamo:tbl/app')).toEqual({ kind: 'file', path: 'dynamo:tbl/app' });
    expect(parseCheckpointSpec('./a:b.ckpt')).toEqual({ kind: 'file', path: './a:b.ckpt' });
    expect(parsePartitionKeySpec('id')).toEqual({ kind: 'id' });
    expect(() => parsePartitionKeySpec('random')).toThrow(/key, id, input or field:NAME/);
  });

  it('rejects bad options with a message naming them', async () => {
    expect(await usage([])).toMatch(/--input-stream is required.*RCF_INPUT_STREAM.*inputStreamName/);
    expect(await usage(['--input-stream', 'in', '--trees', '0'])).toMatch(/--trees must be between 1 and 1000/);
    expect(await usage(['--input-stream', 'in', '--threshold', 'high'])).toMatch(/--threshold must be a number or "auto"/);
    expect(await usage(['--input-stream', 'in', '--emit', 'some'])).toMatch(/--emit must be "anomalies" or "all"/);
    // As detect does: an explanation the output shape drops is refused, not computed and lost.
    expect(await usage(['--input-stream', 'in', '--explain', '--shape', 'flink'])).toMatch(/--explain adds "explanation", which --shape flink/);
    expect(await usage(['--input-stream', 'in', '--start-position', 'AT_TIMESTAMP'])).toMatch(/needs --start-timestamp/);
    expect(await usage(['--input-stream', 'in', '--start-position', 'EARLIEST'])).toMatch(/--start-position must be/);
    expect(await usage(['--input-stream', 'in', '--kinesis-endpoint', 'localhost:4567'])).toMatch(/--kinesis-endpoint must be an http\(s\) URL/);
    expect(await usage(['--input-stream', 'in', '--bogus'])).toMatch(/Unknown option '--bogus'/);
    expect(await usage(['--config', 'c.json'], {}, { inputStreamName: 'in', inputStreamNmae: 'typo' })).toMatch(/unknown option "inputStreamNmae"/);
    expect(await usage(['--config', 'c.json'], {}, '{not json')).toMatch(/not JSON/);
    expect(await usage(['--input-stream', 'in'], { RCF_HTTP1: 'maybe' })).toMatch(/RCF_HTTP1 must be true or false/);
  });

  it('returns undefined for --help', async () => {
    expect(await loadServiceConfig(['--help'], { env: {} })).toBeUndefined();
  });
});

describe('run --workers', () => {
  it('leaves the default to the service, and reads the flag, RCF_WORKERS and the "workers" key', async () => {
    expect((await load(['--input-stream', 's'])).workers).toBeUndefined();
    expect((await load(['--input-stream', 's', '--workers', '1'])).workers).toBe(1);
    expect((await load(['--input-stream', 's', '--workers', '1', '--model-scope', 'stream'])).workers).toBe(1);
    expect((await load(['--input-stream', 's', '--workers', '3'])).workers).toBe(3);
    expect((await load(['--input-stream', 's'], { RCF_WORKERS: '2' })).workers).toBe(2);
    expect((await load(['--input-stream', 's', '--config', 'c.json'], {}, { workers: 4 })).workers).toBe(4);
  });

  it('refuses several workers for a model that spans shards, named as the user wrote it', async () => {
    expect(await usage(['--input-stream', 's', '--workers', '2', '--model-scope', 'stream'])).toMatch(/^--workers above 1 needs --model-scope shard/);
    expect(await usage(['--input-stream', 's', '--model-scope', 'key', '--key-field', 'k'], { RCF_WORKERS: '2' })).toMatch(/^RCF_WORKERS above 1 needs --model-scope shard/);
    expect(await usage(['--input-stream', 's', '--workers', '0'])).toMatch(/--workers must be between 1 and 256/);
  });
});
