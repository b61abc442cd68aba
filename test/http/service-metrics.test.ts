/**
 * `run` with the metrics server against kinesalite: /metrics parsed equals the service's own
 * stats at the same moment, /readyz flips (not ready while starting, ready once shards are
 * assigned, not ready after the stop), and 50 event-stream viewers (one of them leaving
 * mid-stream) do not keep the service from scoring every record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type IncomingMessage } from 'node:http';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { LiveServer } from '../../src/http/live-server.js';
import { runServiceCommand } from '../../src/cli/run-command.js';
import { PassThrough } from 'node:stream';
import { LOCAL_CREDENTIALS } from '../../tools/local-servers.js';
import { createStream, testClientConfig, putRaw, runToEnd, startKinesalite, startService, waitFor, type LocalServer } from '../service/support.js';
import type { PipelineObserver } from '../../src/pipeline/contracts.js';
import { combineObservers } from '../../src/pipeline/observers.js';
import { parsePrometheus, sample } from '../support/prometheus.js';

let kinesalite: LocalServer;
let kinesis: KinesisClient;

beforeAll(async () => {
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
});

afterAll(async () => {
  kinesis?.destroy();
  await kinesalite?.stop();
});

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** An event-stream viewer: counts messages; `close()` drops the connection abruptly. */
function viewer(url: string): { messages: () => number; close: () => void; opened: Promise<IncomingMessage> } {
  let count = 0;
  let buffer = '';
  const req = request(url);
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          count++;
          buffer = buffer.slice(at + 2);
        }
      });
      res.on('error', () => undefined);
      resolve(res);
    });
    req.on('error', reject);
  });
  req.end();
  return { messages: () => count, close: () => req.destroy(), opened };
}

function records(n: number, from: number, keys: string[]): { data: string; partitionKey: string }[] {
  const out: { data: string; partitionKey: string }[] = [];
  for (let i = from; i < from + n; i++) {
    const key = keys[i % keys.length]!;
    const value = i % 997 === 500 ? 400 : 30 + Math.sin(i / 7);
    out.push({ data: JSON.stringify({ time: i, value, sensor: key }), partitionKey: key });
  }
  return out;
}

describe('run --http against kinesalite', () => {
  it('serves counters equal to the service stats, flips /readyz, and keeps scoring with 50 viewers', async () => {
    const stream = 'metrics-in';
    await createStream(kinesis, stream, 2);
    const live = await LiveServer.start({ host: '127.0.0.1', port: 0, pushIntervalMs: 100 });
    try {
      // Nothing attached yet: alive, not ready.
      const before = await get(`${live.url}/readyz`);
      expect(before.status).toBe(503);
      expect(JSON.parse(before.body)).toMatchObject({ ok: false, status: 'starting' });
      expect((await get(`${live.url}/healthz`)).status).toBe(200);

      await putRaw(kinesis, stream, records(3000, 0, ['a', 'b', 'c']));
      // Bad records of two kinds: counted by kind on /metrics.
      await putRaw(kinesis, stream, [
        { data: 'not json', partitionKey: 'a' },
        { data: '{"time": 1, "sensor": "a"}', partitionKey: 'a' },
        { data: new Uint8Array([0xff, 0xfe, 0x7b]), partitionKey: 'b' },
      ]);
      const { service } = await startService(
        ['--input-stream', stream, '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', 'none', '--key-field', 'sensor', '--time-field', 'time'],
        { observer: live, stdout: new (await import('node:stream')).PassThrough().resume() },
      );
      try {
        await waitFor(async () => (await get(`${live.url}/readyz`)).status === 200, 30_000, '/readyz 200');

        const viewers = Array.from({ length: 50 }, () => viewer(`${live.url}/api/events?key=a`));
        await Promise.all(viewers.map((v) => v.opened));
        await waitFor(() => live.viewers === 50, 10_000, '50 viewers');
        await putRaw(kinesis, stream, records(3000, 3000, ['a', 'b', 'c']));
        // One viewer leaves while records are flowing.
        await waitFor(() => viewers[0]!.messages() >= 2, 20_000, 'messages to the first viewer');
        viewers[0]!.close();

        // Mid-stream: one scrape, and the stats snapshot it was made from.
        const mid = await live.metrics.scrape();
        const m = parsePrometheus(mid.text);
        expect(sample(m, 'rcf_records_scored_total')).toBe(mid.stats!.recordsScored);
        expect(sample(m, 'rcf_records_read_total')).toBe(mid.stats!.recordsRead);
        expect(sample(m, 'rcf_anomalies_total')).toBe(mid.stats!.anomalies);

        await waitFor(() => service.stats().recordsScored === 6000, 60_000, 'every record scored');
        await waitFor(() => live.viewers === 49, 10_000, 'the closed viewer to be dropped');
        const stats = service.stats();
        const scraped = await get(`${live.url}/metrics`);
        expect(scraped.status).toBe(200);
        const s = parsePrometheus(scraped.body);
        expect(sample(s, 'rcf_records_scored_total')).toBe(6000);
        expect(sample(s, 'rcf_records_read_total')).toBe(stats.recordsRead);
        expect(stats.recordsRead).toBe(6003);
        expect(sample(s, 'rcf_anomalies_total')).toBe(stats.anomalies);
        expect(stats.anomalies).toBeGreaterThan(0);
        expect(sample(s, 'rcf_bad_records_total', { kind: 'invalid UTF-8' })).toBe(1);
        for (const [kind, n] of Object.entries(stats.badRecordsByKind)) expect(sample(s, 'rcf_bad_records_total', { kind })).toBe(n);
        expect(Object.values(stats.badRecordsByKind).reduce((a, b) => a + b, 0)).toBe(3);
        expect(sample(s, 'rcf_models')).toBe(3);
        expect(sample(s, 'rcf_model_evictions_total')).toBe(0);
        expect(sample(s, 'rcf_output_records_total')).toBe(stats.outputRecords);
        expect(sample(s, 'rcf_shards', { state: 'reading' })).toBe(2);
        const lags = s.filter((x) => x.name === 'rcf_shard_millis_behind_latest');
        expect(lags.map((x) => x.labels['shard']).sort()).toEqual(Object.keys(stats.source!.millisBehindLatest).sort());
        expect(sample(s, 'rcf_scoring_batch_seconds_count')).toBeGreaterThan(0);
        expect(sample(s, 'rcf_process_resident_memory_bytes')).toBeGreaterThan(0);
        // The remaining viewers got messages after the scoring finished.
        for (const v of viewers.slice(1)) expect(v.messages()).toBeGreaterThan(1);
        for (const v of viewers) v.close();
      } finally {
        service.stop();
        await service.done;
      }
      const after = await get(`${live.url}/readyz`);
      expect(after.status).toBe(503);
      expect(JSON.parse(after.body)).toMatchObject({ ok: false, status: 'stopped' });
      expect((await get(`${live.url}/healthz`)).status).toBe(200);
    } finally {
      await live.close();
    }
  });

  it('rcf-stream run --http serves /metrics from the command line, and closes the port at the end', async () => {
    const stream = 'metrics-cli-in';
    await createStream(kinesis, stream, 1);
    await putRaw(kinesis, stream, records(500, 0, ['a']));
    let err = '';
    const stderr = new PassThrough();
    let announce!: (url: string) => void;
    const announced = new Promise<string>((resolve) => (announce = resolve));
    stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /live page on (http:\/\/[^\s]+?)\/\n/.exec(err);
      if (m) announce(m[1]!);
    });
    const env = { AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const done = runServiceCommand(
        ['--input-stream', stream, '--kinesis-endpoint', kinesalite.endpoint, '--region', 'us-east-1', '--start-position', 'TRIM_HORIZON', '--checkpoint', 'none',
          '--stats-interval', '0', '--log-level', 'warn', '--poll-interval-ms', '200', '--idle-poll-ms', '200', '--exit-when-idle', '3', '--http', '127.0.0.1:0'],
        { stdin: new PassThrough(), stdout: new PassThrough().resume(), stderr },
      );
      const url = await announced;
      await waitFor(async () => sample(parsePrometheus(await (await fetch(`${url}/metrics`)).text()), 'rcf_records_scored_total') === 500, 20_000, '500 records on /metrics');
      expect(await done).toBe(0);
      await expect(fetch(`${url}/metrics`)).rejects.toThrow();
    } finally {
      for (const k of Object.keys(env)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('tells its observer: started before any batch, every scored record and dead letter, stopping on the idle exit, stopped last; a throwing observer is turned off', async () => {
    const stream = 'observer-in';
    await createStream(kinesis, stream, 2);
    await putRaw(kinesis, stream, records(400, 0, ['a', 'b']));
    await putRaw(kinesis, stream, [{ data: 'not json', partitionKey: 'a' }]);
    const argv = ['--input-stream', stream, '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', 'none', '--key-field', 'sensor', '--exit-when-idle', '1'];

    // Assertions inside an observer would be swallowed (the service guards it): record, check afterwards.
    const events: string[] = [];
    const shapes: unknown[] = [];
    const atStart: number[] = [];
    const ids: string[] = [];
    const latencies: number[] = [];
    const deadLetters: string[] = [];
    let scored = 0;
    const recording: PipelineObserver = {
      started: (e) => {
        events.push('started');
        shapes.push(e.shape);
        atStart.push(e.stats.stats().recordsScored);
      },
      batchScored: (e) => {
        if (events.at(-1) !== 'batchScored') events.push('batchScored');
        scored += e.batch.count;
        latencies.push(e.latencyMs);
        for (let i = 0; i < e.batch.count; i++) ids.push(e.recordId(i));
      },
      deadLettered: (e) => deadLetters.push(e.kind),
      stopping: (e) => events.push(`stopping:${e.reason}`),
      stopped: (e) => events.push(`stopped:${e.exitCode}:${e.reason}`),
    };
    const result = await runToEnd(argv, 60_000, { observer: recording, stdout: new PassThrough().resume() });
    expect(result.exitCode).toBe(0);
    expect(shapes).toEqual([{ fields: ['value'], keyed: true, shingleSize: 1 }]);
    expect(atStart).toEqual([0]);
    expect(events[0]).toBe('started');
    expect(events[1]).toBe('batchScored');
    expect(events.slice(-2)).toEqual(['stopping:idle', 'stopped:0:idle']);
    expect(events.filter((e) => e.startsWith('stopping')).length).toBe(1);
    expect(scored).toBe(result.stats.recordsScored);
    expect(scored).toBe(400);
    expect(new Set(ids).size).toBe(400);
    for (const id of ids) expect(id).toMatch(/^shardId-\d+:\d+$/);
    expect(latencies.every((ms) => ms >= 0)).toBe(true);
    expect(deadLetters).toEqual(['malformed JSON']);

    // An observer that throws is reported once and turned off; the service scores on.
    let thrown = 0;
    const throwing: PipelineObserver = {
      batchScored: () => {
        thrown++;
        throw new Error('observer bug');
      },
    };
    const broken = await runToEnd(argv, 60_000, { observer: combineObservers(throwing, recording), stdout: new PassThrough().resume() });
    expect(broken.exitCode).toBe(0);
    expect(broken.stats.recordsScored).toBe(400);
    expect(thrown).toBe(1);
    expect(broken.stderr).toContain('the observer failed and is off from now on');
  });
});
