/**
 * The metrics / live-page server on its own, fed through the observer interface: bad and
 * heavy use (a huge key count, a viewer that stops reading, viewers over the cap, unknown
 * paths and methods) leaves it bounded and answering.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { LiveServer } from '../../src/http/live-server.js';
import { parseHttpAddress } from '../../src/http/address.js';
import { DetectionBatch } from '../../src/detect/detector.js';
import type { BatchScoredEvent, PipelineStats } from '../../src/pipeline/contracts.js';
import { loadServiceConfig } from '../../src/service/run-config.js';
import { waitFor } from '../support/local-aws.js';
import { parsePrometheus, sample } from '../support/prometheus.js';

let server: LiveServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A pipeline stand-in for the observer: counts what it scored, like the service does. */
class Counting {
  scored = 0;
  anomalies = 0;
  stats(): PipelineStats {
    return {
      uptimeSeconds: 1,
      recordsRead: this.scored,
      recordsScored: this.scored,
      anomalies: this.anomalies,
      badRecords: 0,
      badRecordsByKind: {},
      deadLettered: { file: 0, stream: 0 },
      outputRecords: 0,
      notifications: { queued: 0, suppressed: 0, dropped: 0 },
      models: 0,
      evictions: 0,
      checkpoints: { saved: 0, failed: 0, lastSavedAt: undefined },
      source: { shardsReading: 1, shardsWaiting: 0, shardsFinished: 0, millisBehindLatest: {} },
    };
  }
}

/** A scored chunk as the pipeline's BatchProcessor reports it. */
function chunk(n: number, keyOf: (i: number) => string, anomalyEvery = 0): BatchScoredEvent {
  const batch = new DetectionBatch(n, 1);
  let anomalies = 0;
  for (let i = 0; i < n; i++) {
    const anomaly = anomalyEvery > 0 && i % anomalyEvery === 0;
    batch.values[i] = 30 + (i % 7);
    batch.keys[i] = keyOf(i);
    batch.score[i] = anomaly ? 5 : 1;
    batch.threshold[i] = 3;
    batch.anomaly[i] = anomaly ? 1 : 0;
    if (anomaly) anomalies++;
  }
  batch.count = n;
  return { shardId: 'shard-0', batch, anomalies, latencyMs: 1, recordId: (i) => `shard-0:${i}` };
}

async function start(options: Partial<Parameters<typeof LiveServer.start>[0]> = {}): Promise<{ live: LiveServer; pipeline: Counting }> {
  const live = await LiveServer.start({ host: '127.0.0.1', port: 0, pushIntervalMs: 20, processMetrics: false, ...options });
  server = live;
  const pipeline = new Counting();
  live.started({ stats: pipeline, shape: { fields: ['value'], keyed: true, shingleSize: 1 } });
  return { live, pipeline };
}

function feed(live: LiveServer, pipeline: Counting, c: BatchScoredEvent): void {
  live.batchScored(c);
  pipeline.scored += c.batch.count;
  pipeline.anomalies += c.anomalies;
}

/** Reads an event stream until `messages` messages arrived; returns them parsed. */
async function readEvents(url: string, messages: number): Promise<Record<string, unknown>[]> {
  const res = await fetch(url);
  const reader = res.body!.getReader();
  const out: Record<string, unknown>[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  while (out.length < messages) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let at: number;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      out.push(JSON.parse(buffer.slice(0, at).replace(/^data: /, '')) as Record<string, unknown>);
      buffer = buffer.slice(at + 2);
    }
  }
  await reader.cancel();
  return out;
}

/** An event stream kept open and read, counting messages. */
function holdOpen(url: string): { messages: () => number; close: () => void } {
  const controller = new AbortController();
  let count = 0;
  void (async () => {
    try {
      const res = await fetch(url, { signal: controller.signal });
      const decoder = new TextDecoder();
      let buffer = '';
      const reader = res.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          count++;
          buffer = buffer.slice(at + 2);
        }
      }
    } catch {
      // aborted
    }
  })();
  return { messages: () => count, close: () => controller.abort() };
}

describe('LiveServer', () => {
  it('stays bounded with 200,000 keys: keys capped, the rest counted as dropped, still answering', async () => {
    const { live, pipeline } = await start({ feed: { maxKeys: 300, keyPoints: 50 } });
    for (let c = 0; c < 100; c++) feed(live, pipeline, chunk(2000, (i) => `key-${c * 2000 + i}`, 997));
    expect(live.feed.keys().length).toBe(300);
    expect(live.feed.keysDropped).toBe(200_000 - 300);
    expect(live.feed.anomalies().length).toBe(100);
    const [first] = await readEvents(`${live.url}/api/events?key=`, 1);
    expect((first!['keys'] as string[]).length).toBe(300);
    expect(first!['keysDropped']).toBe(200_000 - 300);
    const m = parsePrometheus(await (await fetch(`${live.url}/metrics`)).text());
    expect(sample(m, 'rcf_records_scored_total')).toBe(200_000);
    // A dropped key's view is empty rather than another key's data.
    const [gone] = await readEvents(`${live.url}/api/events?key=${encodeURIComponent('key-0')}`, 1);
    expect((gone!['points'] as { t: number[] }).t).toEqual([]);
  });

  it('sends a reset then only what is new, downsampled with every anomaly kept', async () => {
    const { live, pipeline } = await start({ pointsPerMessage: 200, feed: { streamPoints: 5000 } });
    feed(live, pipeline, chunk(3000, () => 'a', 101));
    const res = await fetch(`${live.url}/api/events?key=a`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const next = async (): Promise<Record<string, unknown>> => {
      for (;;) {
        const at = buffer.indexOf('\n\n');
        if (at >= 0) {
          const m = JSON.parse(buffer.slice(6, at)) as Record<string, unknown>;
          buffer = buffer.slice(at + 2);
          return m;
        }
        const { value } = await reader.read();
        buffer += decoder.decode(value, { stream: true });
      }
    };
    const reset = await next();
    expect(reset['type']).toBe('reset');
    // The key ring holds 600 points: 200 sent at most, every anomaly among them.
    const p = reset['points'] as { t: number[]; anomaly: number[] };
    expect(p.t.length).toBeLessThanOrEqual(200 + 6 + 2);
    expect(p.anomaly.filter((a) => a === 1).length).toBe(live.feed.ring('a')!.since(0, 10_000).anomaly.filter((a) => a === 1).length);
    feed(live, pipeline, chunk(10, () => 'a'));
    let appended = 0;
    while (appended < 10) {
      const m = await next();
      expect(m['type']).toBe('append');
      appended += (m['points'] as { t: number[] }).t.length;
    }
    expect(appended).toBe(10);
    await reader.cancel();
  });

  it('keeps serving when a viewer stops reading, and refuses viewers over the cap', async () => {
    const { live, pipeline } = await start({ maxViewers: 3 });
    // A viewer that sends its request and never reads a byte.
    const stuck = connect(Number(new URL(live.url).port), '127.0.0.1');
    stuck.pause();
    stuck.write('GET /api/events?key= HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => live.viewers === 1, 5_000, 'the stuck viewer');
    for (let c = 0; c < 50; c++) feed(live, pipeline, chunk(2000, (i) => `k${i % 50}`, 50));
    const a = holdOpen(`${live.url}/api/events?key=k1`);
    const b = holdOpen(`${live.url}/api/events?key=`);
    await waitFor(() => live.viewers === 3, 5_000, 'three viewers');
    expect((await fetch(`${live.url}/api/events`)).status).toBe(503);
    for (let c = 0; c < 5; c++) feed(live, pipeline, chunk(2000, (i) => `k${i % 50}`, 50));
    await waitFor(() => a.messages() >= 3 && b.messages() >= 3, 10_000, 'messages to the reading viewers');
    a.close();
    b.close();
    expect((await fetch(`${live.url}/healthz`)).status).toBe(200);
    stuck.destroy();
    await waitFor(() => live.viewers === 0, 5_000, 'viewers gone');
  });

  it('answers unknown paths with 404, other methods with 405, and serves its assets', async () => {
    const { live } = await start();
    expect((await fetch(`${live.url}/nope`)).status).toBe(404);
    expect((await fetch(`${live.url}/metrics`, { method: 'POST' })).status).toBe(405);
    const page = await fetch(`${live.url}/`);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('/assets/uPlot.iife.min.js');
    const js = await fetch(`${live.url}/assets/uPlot.iife.min.js`);
    expect(js.status).toBe(200);
    expect(await js.text()).toContain('uPlot');
  });
});

describe('--http', () => {
  it('reads HOST:PORT, :PORT and PORT (127.0.0.1 by default)', () => {
    expect(parseHttpAddress('9400')).toEqual({ host: '127.0.0.1', port: 9400 });
    expect(parseHttpAddress(':0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseHttpAddress('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseHttpAddress('[::1]:9400')).toEqual({ host: '::1', port: 9400 });
    expect(() => parseHttpAddress('host:99999')).toThrow(RangeError);
    expect(() => parseHttpAddress('a b:1')).toThrow(RangeError);
  });

  it('is off unless set, and a bad value is a usage error', async () => {
    expect((await loadServiceConfig(['--input-stream', 's'], { env: {} }))?.http).toBeUndefined();
    expect((await loadServiceConfig(['--input-stream', 's', '--http', '9400'], { env: {} }))?.http).toEqual({ host: '127.0.0.1', port: 9400 });
    expect((await loadServiceConfig(['--input-stream', 's'], { env: { RCF_HTTP: ':9401' } }))?.http).toEqual({ host: '127.0.0.1', port: 9401 });
    await expect(loadServiceConfig(['--input-stream', 's', '--http', 'nope'], { env: {} })).rejects.toThrow(/--http must be HOST:PORT/);
    // Named as it was given: the environment variable, the config file's key.
    await expect(loadServiceConfig(['--input-stream', 's'], { env: { RCF_HTTP: 'nope' } })).rejects.toThrow(/^RCF_HTTP must be HOST:PORT/);
    const readTextFile = async (): Promise<string> => '{"inputStreamName":"s","http":"127.0.0.1:nope"}';
    await expect(loadServiceConfig(['--config', 'c.json'], { env: {}, readTextFile })).rejects.toThrow(/^c\.json: http must be HOST:PORT/);
    expect((await loadServiceConfig(['--config', 'c.json'], { env: {}, readTextFile: async () => '{"inputStreamName":"s","http":"0.0.0.0:9402"}' }))?.http).toEqual({ host: '0.0.0.0', port: 9402 });
  });
});
