/**
 * `detect --threshold auto` with timestamps (--time-field), several fields and keys: the
 * record's time reaches the quality grader (a spike every day at 03:00 stops alarming after
 * a few days), and record counters (`time: 0, 1, 2`) are not taken for timestamps.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lines, requireBuilt, runCli } from './cli-support.js';

const START = Date.UTC(2022, 3, 4);
const STEP = 5 * 60_000;
const DAYS = 14;

let dir: string;

function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** Two hosts, 5-minute records with fields cpu and mem; host "b" bursts at 03:00 every day. */
function rows(time: (i: number) => unknown): string {
  const r = lcg(5);
  const out: string[] = [];
  for (let i = 0; i < DAYS * 288; i++) {
    const burst = i % 288 >= 36 && i % 288 < 39 ? 8 : 0;
    out.push(JSON.stringify({ t: time(i), host: 'a', cpu: 20 + r(), mem: 50 + r() }));
    out.push(JSON.stringify({ t: time(i), host: 'b', cpu: 30 + r() + burst, mem: 60 + r() }));
  }
  return `${out.join('\n')}\n`;
}

interface Out {
  t: unknown;
  host: string;
  anomaly: boolean;
}

async function anomalies(file: string, extra: string[] = []): Promise<Out[]> {
  const r = await runCli(['detect', file, '--threshold', 'auto', '--fields', 'cpu,mem', '--key-field', 'host', '--only-anomalies', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return lines(r.stdout).map((l) => JSON.parse(l) as Out);
}

beforeAll(async () => {
  requireBuilt();
  dir = await mkdtemp(join(tmpdir(), 'detect-quality-'));
  await writeFile(join(dir, 'iso.ndjson'), rows((i) => new Date(START + i * STEP).toISOString()));
  await writeFile(join(dir, 'epoch.ndjson'), rows((i) => (START + i * STEP) / 1000));
  await writeFile(join(dir, 'counter.ndjson'), rows((i) => i));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const dayOf = (o: Out, parse: (t: unknown) => number): number => Math.floor((parse(o.t) - START) / 86_400_000);

describe('detect --threshold auto --time-field', () => {
  it('stops alarming on a daily burst once it has seen a few days of it, per key', async () => {
    const timed = await anomalies(join(dir, 'iso.ndjson'), ['--time-field', 't']);
    const untimed = await anomalies(join(dir, 'iso.ndjson'));
    const days = (list: Out[]): number[] => [...new Set(list.filter((o) => o.host === 'b').map((o) => dayOf(o, (t) => Date.parse(String(t)))))];
    expect(days(untimed).length).toBeGreaterThanOrEqual(10);
    expect(days(timed).length).toBeGreaterThanOrEqual(1);
    expect(Math.max(...days(timed))).toBeLessThanOrEqual(5);
    // Host a never bursts.
    expect(timed.filter((o) => o.host === 'a').length).toBeLessThanOrEqual(1);
  }, 120_000);

  it('reads epoch seconds as the same instants as ISO strings', async () => {
    const iso = await anomalies(join(dir, 'iso.ndjson'), ['--time-field', 't']);
    const epoch = await anomalies(join(dir, 'epoch.ndjson'), ['--time-field', 't']);
    expect(epoch.map((o) => (o.t as number) * 1000)).toEqual(iso.map((o) => Date.parse(String(o.t))));
  }, 120_000);

  it('takes a record counter for no timestamp: the same alarms as without --time-field', async () => {
    const counter = await anomalies(join(dir, 'counter.ndjson'), ['--time-field', 't']);
    const without = await anomalies(join(dir, 'counter.ndjson'));
    expect(counter.map((o) => o.t)).toEqual(without.map((o) => o.t));
    expect(counter.length).toBeGreaterThan(0);
  }, 120_000);
});
