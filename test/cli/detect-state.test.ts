import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNdjsonLine, temperatureRecords } from '../../src/generate/temperature.js';
import { requireBuilt, runCli } from './cli-support.js';

// `detect --state`: models saved at the end (and every N records) and resumed, so a stream
// scored in parts gives exactly the output of one uninterrupted run.
let dir: string;
let whole: string;
let parts: string[];

beforeAll(async () => {
  requireBuilt();
  dir = await mkdtemp(join(tmpdir(), 'rcf-state-'));
  const lines = [...temperatureRecords({ count: 4500, seed: 11, outlierRate: 0.02 })].map(formatNdjsonLine);
  whole = join(dir, 'whole.ndjson');
  await writeFile(whole, lines.join(''));
  parts = [];
  for (const [i, [from, to]] of [[0, 1700], [1700, 1701], [1701, 4500]].entries()) {
    parts.push(join(dir, `part${i}.ndjson`));
    await writeFile(parts[i]!, lines.slice(from, to).join(''));
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('detect --state', () => {
  it.each([
    ['fixed threshold', ['--threshold', '3']],
    ['quality grader, shingle 4', ['--threshold', 'auto', '--shingle', '4']],
    ['AWS TRCF parity, ts engine', ['--threshold', 'auto', '--parity', 'aws', '--engine', 'ts']],
  ])('resumes exactly: %s', async (_name, options) => {
    const one = await runCli(['detect', whole, '--quiet', ...options]);
    expect(one.code).toBe(0);
    const state = join(dir, `state-${options.join('')}.bin`);
    let joined = '';
    for (const part of parts) {
      const r = await runCli(['detect', part, '--quiet', '--state', state, '--state-every', '500', ...options]);
      expect(r.code, r.stderr).toBe(0);
      joined += r.stdout;
    }
    expect(joined.split('\n').length).toBe(4501);
    expect(joined).toBe(one.stdout);
  });

  it('refuses a state file trained with other settings, and a damaged one', async () => {
    const state = join(dir, 'mismatch.bin');
    expect((await runCli(['detect', parts[0]!, '--quiet', '--state', state])).code).toBe(0);
    const other = await runCli(['detect', parts[2]!, '--quiet', '--state', state, '--trees', '20']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/trained with other detection settings/);
    const bytes = await readFile(state);
    bytes[bytes.length - 10]! ^= 0xff;
    await writeFile(state, bytes);
    const damaged = await runCli(['detect', parts[2]!, '--quiet', '--state', state]);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/state file .* is unusable: .*checksum/);
  });
});
