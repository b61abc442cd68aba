/**
 * `rcf-stream generate --to-kinesis`: the generator's records put on a
 * kinesalite stream through KinesisSink, in order, retried through faults.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { runKinesisProducerCommand } from '../../src/cli/kinesis-producer.js';
import { temperatureRecords } from '../../src/generate/temperature.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createStream, testClientConfig, readWholeStream, startKinesalite, text, type LocalServer } from './support.js';

let kinesalite: LocalServer;
let proxy: FaultProxy;
let kinesis: KinesisClient;
const savedEnv = { ...process.env };

beforeAll(async () => {
  kinesalite = await startKinesalite();
  proxy = await startFaultProxy({ target: kinesalite.endpoint, seed: 3 });
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  // The command takes credentials from the SDK chain, as in production.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' });
});

afterAll(async () => {
  process.env = savedEnv;
  kinesis?.destroy();
  await proxy?.close();
  await kinesalite?.stop();
});

function io(): { io: { stdin: PassThrough; stdout: PassThrough; stderr: PassThrough }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdin: new PassThrough(), stdout, stderr }, out: () => out, err: () => err };
}

describe('generate --to-kinesis', () => {
  it('puts the generator series on the stream, record by record, through injected partial failures', async () => {
    await createStream(kinesis, 'gen-in', 1);
    proxy.setRules([{ target: 'PutRecords', fault: 'partial', entryProbability: 0.1, times: 3 }]);
    const t = io();
    const code = await runKinesisProducerCommand(['--to-kinesis', 'gen-in', '--kinesis-endpoint', proxy.endpoint, '--count', '1200', '--seed', '5', '--labels', '--partition-key', 'sensor-1'], t.io);
    proxy.setRules([]);
    expect(code).toBe(0);
    expect(t.err()).toMatch(/^rcf-stream generate: 1,200 records \(\d+ injected outliers\) put on gen-in in .* \d+ records retried\)\n$/);
    const stored = await readWholeStream(kinesis, 'gen-in');
    const expected = [...temperatureRecords({ count: 1200, seed: 5, labels: true })];
    // Retried entries land later, so compare as sets of records; none lost, none doubled.
    expect(stored.map((r) => JSON.parse(text(r.data)) as unknown).sort((a, b) => (a as { time: number }).time - (b as { time: number }).time)).toEqual(expected);
    expect(stored.every((r) => r.partitionKey === 'sensor-1')).toBe(true);
    expect(proxy.stats().injectedEntries).toBeGreaterThan(0);
  });

  it('spreads records over the shards by their time by default', async () => {
    await createStream(kinesis, 'gen-spread', 2);
    const t = io();
    expect(await runKinesisProducerCommand(['--to-kinesis', 'gen-spread', '--kinesis-endpoint', kinesalite.endpoint, '--count', '300', '--quiet'], t.io)).toBe(0);
    expect(t.err()).toBe('');
    const stored = await readWholeStream(kinesis, 'gen-spread');
    expect(stored).toHaveLength(300);
    expect(new Set(stored.map((r) => r.shardId)).size).toBe(2);
    expect(stored.every((r) => r.partitionKey === String((JSON.parse(text(r.data)) as { time: number }).time))).toBe(true);
  });

  it('rejects bad options and reports a missing stream', async () => {
    const t = io();
    expect(await runKinesisProducerCommand(['--to-kinesis', 'x', '--batch', '501'], t.io)).toBe(2);
    expect(t.err()).toMatch(/--batch must be between 1 and 500/);
    const m = io();
    expect(await runKinesisProducerCommand(['--to-kinesis', 'missing-stream', '--kinesis-endpoint', kinesalite.endpoint, '--count', '3'], m.io)).toBe(1);
    expect(m.err()).toMatch(/^rcf-stream generate: PutRecords to missing-stream failed: ResourceNotFoundException: Stream missing-stream .*not found/);
  });
});
