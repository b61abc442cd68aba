/**
 * The service end to end against kinesalite and dynalite (real local servers
 * over the AWS wire protocol), in-process: resharding, restart from a
 * checkpoint, dead letters, injected throttling and 5xx, SNS outage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { SplitShardCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient, createKinesisClient } from '../../src/aws/clients.js';
import { DynamoDbCheckpointStore, FileCheckpointStore, type Checkpoint, type CheckpointStore } from '../../src/checkpoint/index.js';
import { mulberry32 } from '../../src/generate/temperature.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import {
  createStream,
  freePort,
  idOrder,
  localAwsConfig,
  testClientConfig,
  putRaw,
  readOutput,
  readWholeStream,
  referenceScores,
  runToEnd,
  startDynalite,
  startKinesalite,
  startService,
  text,
  waitFor,
  waitForStreamActive,
  type LocalServer,
} from './support.js';

let kinesalite: LocalServer;
let dynalite: LocalServer;
let proxy: FaultProxy;
let kinesis: KinesisClient;
let dynamo: DynamoDBClient;
let dir: string;

beforeAll(async () => {
  [kinesalite, dynalite] = await Promise.all([startKinesalite(), startDynalite()]);
  proxy = await startFaultProxy({ target: kinesalite.endpoint, seed: 11 });
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  dynamo = createDynamoDbClient(localAwsConfig({ dynamodb: dynalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-service-'));
});

afterAll(async () => {
  kinesis?.destroy();
  dynamo?.destroy();
  await proxy?.close();
  await Promise.all([kinesalite?.stop(), dynalite?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface SensorRecord {
  sensor: string;
  time: number;
  value: number;
}

/** Interleaved readings of several sensors around 30, with rare outliers. */
function sensorRecords(sensors: string[], perSensor: number, seed: number, firstTime = 0): SensorRecord[] {
  const random = mulberry32(seed);
  const out: SensorRecord[] = [];
  for (let t = firstTime; t < firstTime + perSensor; t++) {
    for (const sensor of sensors) {
      const outlier = random() < 0.01;
      const value = outlier ? 15 + 30 * random() : 30 + 4 * random() - 2;
      out.push({ sensor, time: t, value: Math.round(value * 100) / 100 });
    }
  }
  return out;
}

const asPut = (rs: SensorRecord[]): { data: string; partitionKey: string }[] => rs.map((r) => ({ data: JSON.stringify(r), partitionKey: r.sensor }));

describe('rcf-stream run against kinesalite', () => {
  it('reads 2 shards and follows a split mid-stream: every record scored once, per-key order kept, scores exact', async () => {
    await createStream(kinesis, 'split-in', 2);
    await createStream(kinesis, 'split-out', 2);
    const sensors = ['s0', 's1', 's2', 's3', 's4', 's5'];
    const before = sensorRecords(sensors, 150, 1);
    const after = sensorRecords(sensors, 150, 2, 150);
    await putRaw(kinesis, 'split-in', asPut(before));
    // Partition key = sensor, so each key lives in one shard at a time: per-key models across shards are deterministic.
    const argv = ['--key-field', 'sensor', '--time-field', 'time', '--sample-size', '64', '--trees', '20'];
    const { service, stderr } = await startService([
      '--model-scope', 'key',
      '--input-stream', 'split-in', '--output-stream', 'split-out', '--kinesis-endpoint', kinesalite.endpoint,
      '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--checkpoint', `file:${join(dir, 'split.ckpt')}`, '--get-records-limit', '100',
      '--shard-sync-interval', '0.5',
      ...argv,
    ]);
    try {
      await waitFor(() => service.stats().outputRecords >= before.length, 20_000, 'records before the split');
      await kinesis.send(new SplitShardCommand({ StreamName: 'split-in', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 126n).toString() }));
      await waitForStreamActive(kinesis, 'split-in');
      await putRaw(kinesis, 'split-in', asPut(after));
      await waitFor(() => service.stats().outputRecords >= before.length + after.length, 20_000, `all records (stderr: ${stderr()})`);
    } finally {
      service.stop();
    }
    const result = await service.done;
    expect(result.exitCode).toBe(0);
    expect(result.stats.source?.shardsFinished).toBeGreaterThanOrEqual(1);
    expect(result.stats.models).toBe(sensors.length);

    const out = await readOutput(kinesis, 'split-out');
    const all = [...before, ...after];
    expect(out).toHaveLength(all.length);
    expect(new Set(out.map((o) => o.recordId)).size).toBe(all.length);
    // Records of a key share an output shard (partition key = the key), in input order there.
    for (const sensor of sensors) {
      const mine = out.filter((o) => o.sensor === sensor);
      expect(mine.every((o) => o.$partitionKey === sensor && o.$shardId === mine[0]!.$shardId)).toBe(true);
      expect(mine.map((o) => o.time)).toEqual(all.filter((r) => r.sensor === sensor).map((r) => r.time));
      const expected = await referenceScores(argv, all.filter((r) => r.sensor === sensor).map((r) => ({ key: sensor, values: [r.value] })));
      expect(mine.map((o) => o.score)).toEqual(expected.map((e) => e.score));
    }
    // The parent shard's end reached the checkpoint; both children are positioned.
    const cp = await new FileCheckpointStore(join(dir, 'split.ckpt')).load();
    const children = Object.keys(cp!.shards).filter((id) => id > 'shardId-000000000001');
    expect(children).toHaveLength(2);
    expect(cp!.shards['shardId-000000000000']?.ended ?? true).toBe(true);
  });

  it('restarts from a DynamoDB checkpoint: nothing lost or repeated, models continue exactly (threshold auto)', async () => {
    await DynamoDbCheckpointStore.createTable(dynamo, 'rcf-checkpoints');
    await createStream(kinesis, 'restart-in', 1);
    await createStream(kinesis, 'restart-out', 1);
    const first = sensorRecords(['a'], 900, 3);
    const second = sensorRecords(['a'], 900, 4, 900);
    const argv = ['--threshold', 'auto', '--shingle', '4', '--sample-size', '64', '--trees', '30', '--time-field', 'time'];
    const common = [
      '--input-stream', 'restart-in', '--output-stream', 'restart-out', '--emit', 'all', '--start-position', 'TRIM_HORIZON',
      '--kinesis-endpoint', kinesalite.endpoint, '--dynamodb-endpoint', dynalite.endpoint, '--checkpoint', 'dynamodb:rcf-checkpoints/restart-app',
      '--checkpoint-records', '250', '--get-records-limit', '200', ...argv,
    ];

    await putRaw(kinesis, 'restart-in', asPut(first));
    const run1 = await startService(common);
    await waitFor(() => run1.service.stats().outputRecords >= first.length, 20_000, 'first half');
    run1.service.stop('SIGTERM');
    const r1 = await run1.service.done;
    expect(r1.exitCode).toBe(0);
    expect(r1.stats.checkpoints.saved).toBeGreaterThanOrEqual(2);
    expect(r1.stats.checkpoints.restoredModels).toBe(false);

    const store = new DynamoDbCheckpointStore({ client: dynamo, tableName: 'rcf-checkpoints', applicationName: 'restart-app' });
    const saved = await store.load();
    expect(saved?.models?.byteLength).toBeGreaterThan(1000);
    expect(Object.keys(saved!.shards)).toEqual(['shardId-000000000000']);

    // Other model settings must not silently continue the saved models.
    await expect(startService([...common, '--trees', '31'])).rejects.toThrow(/other detection settings.*--reset-models/);

    await putRaw(kinesis, 'restart-in', asPut(second));
    const run2 = await startService(common);
    await waitFor(() => run2.service.stats().outputRecords >= second.length, 20_000, 'second half');
    run2.service.stop('SIGINT');
    const r2 = await run2.service.done;
    expect(r2.exitCode).toBe(0);
    expect(r2.stats.checkpoints.restoredModels).toBe(true);
    expect(r2.stats.recordsRead).toBe(second.length);

    const out = await readOutput(kinesis, 'restart-out');
    const all = [...first, ...second];
    expect(out.map((o) => o.time)).toEqual(all.map((r) => r.time));
    expect(new Set(out.map((o) => o.recordId)).size).toBe(all.length);
    const expected = await referenceScores(argv, all.map((r) => ({ values: [r.value] })));
    expect(out.map((o) => o.score)).toEqual(expected.map((e) => e.score));
    expect(out.map((o) => o.grade)).toEqual(expected.map((e) => e.grade));
    expect(out.map((o) => o.anomaly)).toEqual(expected.map((e) => e.anomaly));
    expect(expected.filter((e) => e.anomaly).length).toBeGreaterThan(0);
  });

  it('dead-letters malformed records to a file and a stream, counts them, and keeps scoring', async () => {
    await createStream(kinesis, 'bad-in', 1);
    await createStream(kinesis, 'bad-out', 1);
    await createStream(kinesis, 'bad-dlq', 1);
    const good = sensorRecords(['x'], 200, 5);
    const bad: { data: string | Uint8Array; partitionKey: string; kind: string }[] = [
      { data: '{"sensor":"x","time":1,"value":', partitionKey: 'p', kind: 'malformed JSON' },
      { data: '{"sensor":"x","time":2}', partitionKey: 'p', kind: 'missing field' },
      { data: '{"sensor":"x","time":3,"value":"hot"}', partitionKey: 'p', kind: 'not a number' },
      { data: '[30.1]', partitionKey: 'p', kind: 'not a JSON object' },
      { data: '{"sensor":"x","time":4,"value":"1e999"}', partitionKey: 'p', kind: 'not finite' },
      { data: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), partitionKey: 'p', kind: 'invalid UTF-8' },
    ];
    const mixed = [...asPut(good.slice(0, 100)), ...bad, ...asPut(good.slice(100))];
    await putRaw(kinesis, 'bad-in', mixed);
    const deadLetters = join(dir, 'dead.ndjson');
    const r = await runToEnd([
      '--input-stream', 'bad-in', '--output-stream', 'bad-out', '--dead-letter', deadLetters, '--dead-letter-stream', 'bad-dlq',
      '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--emit', 'all', '--checkpoint', 'none',
      '--exit-when-idle', '0.5', '--time-field', 'time',
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stats.recordsRead).toBe(mixed.length);
    expect(r.stats.recordsScored).toBe(good.length);
    expect(r.stats.badRecords).toBe(bad.length);
    expect(r.stats.badRecordsByKind).toEqual({ 'malformed JSON': 1, 'missing field': 1, 'not a number': 1, 'not finite': 1, 'not a JSON object': 1, 'invalid UTF-8': 1 });
    expect(r.stats.deadLettered).toEqual({ file: bad.length, stream: bad.length });
    expect(r.stderr).toMatch(/bad record recordId=shardId-000000000000:\d+ kind="missing field"/);

    const fileLetters = readFileSync(deadLetters, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(fileLetters.map((l) => l['reason'])).toEqual([
      expect.stringMatching(/^malformed JSON/),
      'missing field "value"',
      'field "value" is not a number: "hot"',
      'not a JSON object (got array)',
      expect.stringMatching(/"value"/),
      'invalid UTF-8',
    ]);
    expect(fileLetters[0]).toMatchObject({ input: '{"sensor":"x","time":1,"value":', source: expect.stringMatching(/^shardId-000000000000:\d+$/) });
    expect(fileLetters[5]).toMatchObject({ inputBase64: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64') });

    const streamLetters = (await readWholeStream(kinesis, 'bad-dlq')).map((x) => JSON.parse(text(x.data)) as Record<string, unknown>);
    expect(streamLetters.map((l) => l['kind'])).toEqual(bad.map((b) => b.kind));
    expect(streamLetters.map((l) => l['recordId'])).toEqual(fileLetters.map((l) => l['source']));
    const out = await readOutput(kinesis, 'bad-out');
    expect(out.map((o) => o.time)).toEqual(good.map((g) => g.time));
    // Ids follow the input order, and bad records take their own places in it.
    const ids = [...out.map((o) => o.recordId), ...streamLetters.map((l) => l['recordId'] as string)].sort(idOrder);
    expect(new Set(ids).size).toBe(mixed.length);
  });

  it('loses no record under injected throttling, 5xx and partial PutRecords failures, with backoff', async () => {
    await createStream(kinesis, 'fault-in', 2);
    await createStream(kinesis, 'fault-out', 2);
    const records = sensorRecords(['f0', 'f1', 'f2', 'f3'], 600, 6);
    await putRaw(kinesis, 'fault-in', asPut(records));
    proxy.resetStats();
    proxy.setRules([
      { target: 'ListShards', fault: 'throttle', calls: [1] },
      { target: 'GetShardIterator', fault: 'internal', calls: [1] },
      // Capped, so the jittered exponential backoff stays short.
      { target: 'GetRecords', fault: 'throttle', probability: 0.25, times: 12 },
      { target: 'GetRecords', fault: 'internal', probability: 0.1, times: 5 },
      { target: 'PutRecords', fault: 'internal', calls: [2, 3] },
      { target: 'PutRecords', fault: 'throttle', calls: [5] },
      { target: 'PutRecords', fault: 'partial', entryProbability: 0.2, times: 8 },
    ]);
    let r;
    try {
      r = await runToEnd([
        '--input-stream', 'fault-in', '--output-stream', 'fault-out', '--kinesis-endpoint', proxy.endpoint, '--start-position', 'TRIM_HORIZON',
        '--emit', 'all', '--checkpoint', 'none', '--exit-when-idle', '1', '--get-records-limit', '150', '--key-field', 'sensor',
      ], 45_000);
    } finally {
      proxy.setRules([]);
    }
    const px = proxy.stats();
    expect(r.exitCode).toBe(0);
    const out = await readOutput(kinesis, 'fault-out');
    // Injected faults never reach kinesalite, so every record arrives exactly once.
    expect(out).toHaveLength(records.length);
    expect(new Set(out.map((o) => o.recordId)).size).toBe(records.length);
    const src = r.stats.source!;
    const sink = r.stats.sink!;
    expect(src.throttles).toBe((px.injected['GetRecords:throttle'] ?? 0) + (px.injected['ListShards:throttle'] ?? 0));
    expect(src.retries).toBe(src.throttles + (px.injected['GetRecords:internal'] ?? 0) + (px.injected['GetShardIterator:internal'] ?? 0));
    expect(src.throttles).toBeGreaterThan(2);
    expect(src.backoffMs).toBeGreaterThan(0);
    expect(sink.retriedRecords).toBeGreaterThanOrEqual(px.injectedEntries);
    expect(sink.transientFailures).toBeGreaterThanOrEqual(2);
    expect(sink.backoffMs).toBeGreaterThan(0);
    console.log(
      `[fault test] ${records.length} records, exit ${r.exitCode}; injected ${JSON.stringify(px.injected)}, ${px.injectedEntries} PutRecords entries; ` +
        `source throttles=${src.throttles} retries=${src.retries} backoffMs=${src.backoffMs}; sink retries=${sink.retries} retriedRecords=${sink.retriedRecords} backoffMs=${sink.backoffMs}; ` +
        `output ${out.length} records, ${new Set(out.map((o) => o.recordId)).size} distinct`,
    );
  });

  it('does not move a position past an anomaly while SNS is unreachable; a stop counts the notifications dropped', async () => {
    // At least once (was: keep going and drop notifications): the output of the first
    // anomaly's batch is written, but its position is not committed until SNS accepts.
    await createStream(kinesis, 'nosns-in', 1);
    await createStream(kinesis, 'nosns-out', 1);
    const records = sensorRecords(['n'], 3000, 7);
    await putRaw(kinesis, 'nosns-in', asPut(records));
    const deadPort = await freePort();
    const ckpt = join(dir, 'nosns.ckpt');
    const { service, stderr } = await startService([
      '--input-stream', 'nosns-in', '--output-stream', 'nosns-out', '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON',
      '--sns-topic-arn', 'arn:aws:sns:us-east-1:000000000000:anomaly_detection', '--sns-endpoint', `http://127.0.0.1:${deadPort}`,
      '--sns-rate', '1000', '--checkpoint', `file:${ckpt}`, '--checkpoint-interval', '0.1', '--shutdown-timeout', '1', '--time-field', 'time',
      '--get-records-limit', '500',
    ]);
    // Reading pauses once 4 scored batches of 500 wait for delivery: the stop must not wait on them.
    await waitFor(() => service.stats().recordsScored >= 2000 && (service.stats().sns?.retries ?? 0) > 3, 20_000, 'deliveries held by SNS');
    service.stop('test');
    const r = await service.done;
    expect(r.exitCode).toBe(1);
    expect(stderr()).toMatch(/shutdown timeout/);
    expect(r.stats.sns!.published).toBe(0);
    expect(r.stats.notifications.dropped).toBeGreaterThan(0);
    // Nothing committed reaches the first anomaly's batch (500 records per batch).
    const firstAnomaly = (await readOutput(kinesis, 'nosns-out')).sort((a, b) => idOrder(a.recordId, b.recordId))[0]!;
    const saved = await new FileCheckpointStore(ckpt).load();
    const position = saved === undefined ? undefined : Object.values(saved.shards)[0]!.sequenceNumber;
    const anomalySeq = firstAnomaly.recordId.split(':')[1]!;
    if (position !== undefined && /^\d+$/.test(position)) expect(BigInt(position) < BigInt(anomalySeq)).toBe(true);
  });

  it('retries checkpoint saves that fail transiently, and stops with exit 1 when the store cannot be written', async () => {
    await createStream(kinesis, 'ckfail-in', 1);
    await putRaw(kinesis, 'ckfail-in', asPut(sensorRecords(['c'], 300, 8)));
    const file = new FileCheckpointStore(join(dir, 'flaky.ckpt'));
    let failuresLeft = 2;
    const flaky: CheckpointStore = {
      load: () => file.load(),
      save: async (cp: Checkpoint) => {
        if (failuresLeft-- > 0) throw Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
        await file.save(cp);
      },
    };
    const common = ['--input-stream', 'ckfail-in', '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--get-records-limit', '50', '--checkpoint-records', '50', '--exit-when-idle', '0.5'];
    const ok = await runToEnd(common, 30_000, { store: flaky, stdout: new PassThrough() });
    expect(ok.exitCode).toBe(0);
    expect(ok.stats.checkpoints.failed).toBe(2);
    expect(ok.stats.checkpoints.saved).toBeGreaterThanOrEqual(1);
    expect(ok.stderr).toMatch(/checkpoint save failed; will retry.*ServiceUnavailable/);
    expect(Object.values((await file.load())!.shards)[0]!.sequenceNumber).toMatch(/^\d+$/);

    const unwritable: CheckpointStore = {
      load: async () => undefined,
      save: async () => {
        throw Object.assign(new Error(`ENOENT: no such file or directory, open '${join(dir, 'no-such-dir', 'x.ckpt')}'`), { code: 'ENOENT' });
      },
    };
    const broken = await runToEnd(common, 30_000, { store: unwritable, stdout: new PassThrough() });
    expect(broken.exitCode).toBe(1);
    expect(broken.reason).toMatch(/ENOENT/);
    expect(broken.stderr).toMatch(/checkpoint failed; stopping/);
    // A file checkpoint in a directory that does not exist is refused before anything is read (its lock cannot be made).
    await expect(runToEnd([...common, '--checkpoint', `file:${join(dir, 'no-such-dir', 'x.ckpt')}`], 30_000, { stdout: new PassThrough() })).rejects.toThrow(/ENOENT.*no-such-dir/);
  });
});
