/**
 * `detect` on several scoring threads: keyed models are partitioned across worker
 * threads by key, and the output is byte-identical to one thread's (and to no worker).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../src/generate/temperature.js';
import { requireBuilt, runCli } from './cli-support.js';

let dir: string;
let file: string;

beforeAll(() => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'rcf-workers-'));
  file = join(dir, 'keyed.ndjson');
  const random = mulberry32(3);
  const lines: string[] = [];
  // 5,000 records over 37 keys, in batches larger than one detector call (2,048 records).
  for (let i = 0; i < 5000; i++) {
    const value = random() < 0.02 ? 10 + 40 * random() : 30 + 2 * random();
    lines.push(JSON.stringify({ time: i, a: value, b: 2 * value + random(), key: `sensor-${Math.floor(random() * 37)}` }));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

// No --quiet: the summary line (keys) is checked below.
const model = ['--fields', 'a,b', '--trees', '15', '--sample-size', '64'];

describe('detect --workers', () => {
  it('gives byte-identical output with 1, 2 and 3 workers and without a worker (keyed, with explanations)', async () => {
    const argv = [file, '--key-field', 'key', '--explain', '--threshold', 'auto', ...model];
    const runs = await Promise.all([['--workers', '1'], ['--workers', '2'], ['--workers', '3'], ['--no-worker']].map((extra) => runCli(['detect', ...argv, ...extra])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs[0]!.stdout.split('\n')).toHaveLength(5001);
    for (const r of runs.slice(1)) expect(r.stdout === runs[0]!.stdout).toBe(true);
    expect(runs[1]!.stderr).toMatch(/5,000 records.*37 keys/);
  }, 120_000);

  it('gives byte-identical output unkeyed with a worker and without', async () => {
    const [a, b] = await Promise.all([runCli(['detect', file, ...model]), runCli(['detect', file, ...model, '--no-worker'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(0);
    expect(a.stdout === b.stdout).toBe(true);
  }, 120_000);

  it('refuses several workers for one model', async () => {
    const r = await runCli(['detect', file, ...model, '--workers', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers above 1 needs --key-field/);
  });
});
