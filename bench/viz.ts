/**
 * `npm run bench:viz`: what the live page costs the scoring rate.
 *
 * The service's scoring step (a keyed detector over chunks of 2048 one-field records, 50 trees)
 * runs on this thread and yields to the event loop after every chunk, as the service does
 * between batches. Three variants, interleaved round by round so that machine noise hits
 * them alike: no observer; the LiveServer observing with no viewer; the LiveServer with 10
 * live viewers (event streams read by a child process, as browsers elsewhere would).
 * Prints the median records/s of each and the ratios measured in the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { DetectionBatch, KeyedDetector } from '../src/detect/detector.js';
import { graderFactory } from '../src/detect/strategy.js';
import { LiveServer } from '../src/http/live-server.js';
import type { PipelineObserver, PipelineStats } from '../src/pipeline/contracts.js';

const CHUNK = 2048;
const KEYS = 20;
const ROUNDS = Number(process.env['RCF_BENCH_ROUNDS'] ?? 5);
const SECONDS = Number(process.env['RCF_BENCH_SECONDS'] ?? 3);
const VIEWERS = 10;

async function newDetector(): Promise<KeyedDetector> {
  const grader = await graderFactory({ kind: 'fixed', value: 3 });
  return KeyedDetector.create({ forest: { dimensions: 1, numberOfTrees: 50, sampleSize: 256, randomSeed: 1 }, grader, maxKeys: 1000 });
}

interface Rate {
  /** Records per wall-clock second. */
  wall: number;
  /** Records per second of this process's CPU time (less sensitive to other load on the machine). */
  cpu: number;
}

const recordId = (i: number): string => `shard-0:${i}`;
const STATS: PipelineStats = { uptimeSeconds: 0, recordsRead: 0, recordsScored: 0, anomalies: 0, badRecords: 0, badRecordsByKind: {}, deadLettered: { file: 0, stream: 0 }, outputRecords: 0, notifications: { queued: 0, suppressed: 0, dropped: 0 }, models: KEYS, evictions: 0, checkpoints: { saved: 0, failed: 0, lastSavedAt: undefined } };
const STARTED = { stats: { stats: () => STATS }, shape: { fields: ['value'], keyed: true, shingleSize: 1 } };

/** Scores for `seconds`, yielding after each chunk. */
async function measure(detector: KeyedDetector, observer: PipelineObserver | undefined, seconds: number, offset: { i: number }): Promise<Rate> {
  const batch = new DetectionBatch(CHUNK, 1);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  let records = 0;
  while (performance.now() - started < seconds * 1000) {
    for (let s = 0; s < CHUNK; s++) {
      const i = offset.i++;
      batch.values[s] = 30 + 2 * Math.sin(i / 13) + (i % 5000 === 0 ? 50 : 0);
      batch.keys[s] = `sensor-${i % KEYS}`;
    }
    batch.count = CHUNK;
    const t0 = performance.now();
    detector.run(batch);
    observer?.batchScored?.({ shardId: 'shard-0', batch, anomalies: 0, latencyMs: performance.now() - t0, recordId });
    records += CHUNK;
    await yieldNow();
  }
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wall: records / wall, cpu: records / ((cpu.user + cpu.system) / 1e6) };
}

/** A child process holding `n` event streams open, reading and discarding; resolves once all are open. */
async function viewers(url: string, n: number): Promise<ChildProcess> {
  const code = `
    const http = require('node:http');
    let open = 0;
    for (let i = 0; i < ${n}; i++) {
      http.get(${JSON.stringify(url)} + (i % 2 === 0 ? '' : 'sensor-' + i), (res) => {
        res.on('data', () => {});
        if (++open === ${n}) process.stdout.write('open\\n');
      });
    }`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('open')) resolve();
    });
    child.once('exit', (c) => reject(new Error(`viewer process exited with ${c}`)));
  });
  return child;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const detector = await newDetector();
  const live = await LiveServer.start({ host: '127.0.0.1', port: 0 });
  live.started(STARTED);
  const offset = { i: 0 };
  // Warm-up: every model's sample full, JIT settled.
  await measure(detector, live, Number(process.env['RCF_BENCH_WARMUP'] ?? 8), offset);
  const rates = { none: [] as Rate[], observer: [] as Rate[], viewers: [] as Rate[] };
  let child: ChildProcess | undefined;
  /** Per round with viewers: the share of this process's CPU time spent pushing to them. */
  const pushShare: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      rates.none.push(await measure(detector, undefined, SECONDS, offset));
      rates.observer.push(await measure(detector, live, SECONDS, offset));
      child = await viewers(`${live.url}/api/events?key=`, VIEWERS);
      const pushed = live.pushSeconds;
      const cpu0 = process.cpuUsage();
      rates.viewers.push(await measure(detector, live, SECONDS, offset));
      const cpu = process.cpuUsage(cpu0);
      pushShare.push((live.pushSeconds - pushed) / ((cpu.user + cpu.system) / 1e6));
      child.kill();
      child = undefined;
    }
  } finally {
    child?.kill();
    await live.close();
    detector.dispose();
  }
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US').padStart(10);
  console.log(`viz bench: keyed detector (${KEYS} keys, 50 trees, 1 field), chunks of ${CHUNK}, ${ROUNDS} rounds x ${SECONDS} s interleaved, medians`);
  console.log('                              records/s (wall)  ratio   records/CPU-s  ratio');
  const base = { wall: median(rates.none.map((r) => r.wall)), cpu: median(rates.none.map((r) => r.cpu)) };
  const medians: Record<string, Rate> = {};
  for (const [name, label] of [['none', 'no observer'], ['observer', 'live server, no viewer'], ['viewers', `live server, ${VIEWERS} viewers`]] as const) {
    const m = { wall: median(rates[name].map((r) => r.wall)), cpu: median(rates[name].map((r) => r.cpu)) };
    medians[name] = m;
    console.log(`  ${label.padEnd(26)} ${fmt(m.wall)}      ${(m.wall / base.wall).toFixed(3)}  ${fmt(m.cpu)}      ${(m.cpu / base.cpu).toFixed(3)}`);
  }
  console.log(`  pushing to ${VIEWERS} viewers: ${(100 * median(pushShare)).toFixed(2)}% of the process's CPU time (median over rounds; wall time spent in the push ticks)`);
  // The observer call alone, in a tight loop: CPU per record, against the scoring's.
  const probe = await LiveServer.start({ host: '127.0.0.1', port: 0, processMetrics: false });
  probe.started(STARTED);
  const batch = new DetectionBatch(CHUNK, 1);
  for (let s = 0; s < CHUNK; s++) {
    batch.values[s] = 30 + Math.sin(s);
    batch.keys[s] = `sensor-${s % KEYS}`;
    batch.score[s] = s % 1000 === 0 ? 5 : 1;
    batch.anomaly[s] = s % 1000 === 0 ? 1 : 0;
  }
  batch.count = CHUNK;
  const observeNs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const cpu0 = process.cpuUsage();
    for (let c = 0; c < 200; c++) probe.batchScored({ shardId: 'shard-0', batch, anomalies: 2, latencyMs: 1, recordId });
    const cpu = process.cpuUsage(cpu0);
    observeNs.push(((cpu.user + cpu.system) * 1000) / (200 * CHUNK));
  }
  await probe.close();
  const ns = median(observeNs);
  const scoringNs = 1e9 / base.cpu;
  console.log(`  observer call alone: ${ns.toFixed(0)} ns CPU per record, ${((100 * ns) / scoringNs).toFixed(2)}% of the ${scoringNs.toFixed(0)} ns scoring takes`);
  console.log(JSON.stringify({ rates, medians, pushShare, observeNsPerRecord: observeNs }));
}

await main();
