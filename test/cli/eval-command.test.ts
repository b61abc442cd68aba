import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNabTimestamp } from '../../src/eval/nab-corpus.js';
import { EVAL_HELP, runEvalCommand } from '../../src/cli/eval-command.js';
import type { CliIo } from '../../src/cli/args.js';

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
}

function capture(tty = false): Captured {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]): Writable =>
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        into.push(chunk.toString());
        callback();
      },
    });
  const stderr = Object.assign(sink(err), { isTTY: tty, columns: 200 });
  return { io: { stdin: Readable.from([]), stdout: sink(out), stderr }, stdout: () => out.join(''), stderr: () => err.join('') };
}

const START = Date.UTC(2021, 5, 1);
const STEP = 60_000;
const ROWS = 2000;

let root: string;
/** root/work/shared/data/nab holds the corpus; root/work/main is a cwd where the default finds it. */
let corpus: string;
let checkout: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'eval-command-'));
  corpus = join(root, 'work', 'shared', 'data', 'nab');
  checkout = join(root, 'work', 'main');
  await mkdir(join(corpus, 'data', 'cat'), { recursive: true });
  await mkdir(join(corpus, 'labels'), { recursive: true });
  await mkdir(checkout, { recursive: true });
  let s = 12345;
  const values = Array.from({ length: ROWS }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return 10 + s / 2 ** 31;
  });
  values[1500] = 40;
  const text = values.map((v, i) => `${formatNabTimestamp(START + i * STEP)},${v}`).join('\n');
  await writeFile(join(corpus, 'data', 'cat', 'series.csv'), `timestamp,value\n${text}\n`);
  const at = (row: number): string => formatNabTimestamp(START + row * STEP);
  await writeFile(join(corpus, 'labels', 'combined_windows.json'), JSON.stringify({ 'cat/series.csv': [[at(1450), at(1550)]] }));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('rcf-stream eval', () => {
  it('prints help', async () => {
    const c = capture();
    expect(await runEvalCommand(['--help'], c.io)).toBe(0);
    expect(c.stdout()).toBe(EVAL_HELP);
    expect(EVAL_HELP).toMatch(/^Usage: rcf-stream eval/);
  });

  it('evaluates a corpus and prints the profile and per-file tables', async () => {
    const c = capture();
    expect(await runEvalCommand(['--data', corpus, '--quiet'], c.io)).toBe(0);
    const out = c.stdout();
    expect(out).toMatch(/^rcf-stream eval: mode quality, 1 series, 2,000 records/);
    expect(out).toMatch(/^profile +score +threshold +TP +FP +FN$/m);
    for (const profile of ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate']) {
      expect(out).toMatch(new RegExp(`^${profile} +9\\d\\.\\d +[01]\\.\\d{4} +1 +0 +0$`, 'm'));
    }
    expect(out).toMatch(/^cat\/series\.csv +2000 +1 +1 +0 +0 +0\.86 +2021-06-02 01:00:00$/m);
    expect(c.stderr()).toBe('');
  });

  it('finds the corpus at ../shared/data/nab by default', async () => {
    const c = capture();
    expect(await runEvalCommand(['--quiet', '--mode', 'raw'], c.io, checkout)).toBe(0);
    expect(c.stdout()).toMatch(/mode raw, 1 series/);
  });

  it('writes JSON and NAB result files on request', async () => {
    const c = capture();
    const results = join(root, 'results');
    const code = await runEvalCommand(
      ['--data', corpus, '--json', '--mode', 'aws-parity', '--trees', '30', '--seed', '9', '--results-dir', results, '--detector-name', 'mine'],
      c.io,
    );
    expect(code).toBe(0);
    const json = JSON.parse(c.stdout()) as Record<string, any>;
    expect(json.mode).toBe('aws-parity');
    expect(json.forest).toMatchObject({ numberOfTrees: 30, randomSeed: '9' });
    expect(Object.keys(json.profiles)).toEqual(['standard', 'reward_low_FP_rate', 'reward_low_FN_rate']);
    expect(json.profiles.standard.perFile[0].name).toBe('cat/series.csv');
    expect(await readdir(join(results, 'mine', 'cat'))).toEqual(['mine_series.csv']);
  });

  it('passes forest and grader options through', async () => {
    const c = capture();
    const argv = ['--data', corpus, '--json', '--sample-size', '128', '--shingle', '2', '--time-decay', '0.001', '--output-after', '40'];
    argv.push('--short-window', '3', '--horizon', '1000', '--alarm-level', '5.5', '--suppression', '50', '--engine', 'ts');
    argv.push('--latest-weight', '0.3', '--deviation-floor', '0.1');
    expect(await runEvalCommand(argv, c.io)).toBe(0);
    const json = JSON.parse(c.stdout()) as Record<string, any>;
    expect(json.engine).toBe('ts');
    expect(json.forest).toEqual({ numberOfTrees: 50, sampleSize: 128, shingleSize: 2, timeDecay: 0.001, outputAfter: 40, randomSeed: '0' });
    expect(json.grader).toMatchObject({
      shortWindow: 3,
      latestWeight: 0.3,
      longHorizon: 1000,
      minRelativeDeviation: 0.1,
      alarmLevel: 5.5,
      suppression: 50,
    });
  });

  it('shows progress on a terminal, and not with --quiet', async () => {
    const tty = capture(true);
    expect(await runEvalCommand(['--data', corpus], tty.io)).toBe(0);
    expect(tty.stderr()).toMatch(/\r\x1b\[K\[#{20}\] 1\/1 series {2}2,000\/2,000 records/);
    expect(tty.stderr().endsWith('\r\x1b[K')).toBe(true); // the line is cleared before the report
    const quiet = capture(true);
    expect(await runEvalCommand(['--data', corpus, '--quiet'], quiet.io)).toBe(0);
    expect(quiet.stderr()).toBe('');
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--data', 'x', 'extra'], /unexpected argument "extra"/],
    [['--data', 'x', '--mode', 'best'], /--mode must be "quality" or "aws-parity" or "raw"/],
    [['--data', 'x', '--trees', '0'], /--trees must be between 1 and 1000/],
    [['--data', 'x', '--trees', 'many'], /--trees must be an integer/],
    [['--data', 'x', '--time-decay=-1'], /--time-decay must be >= 0/],
    [['--data', 'x', '--seed', '1.5'], /--seed must be an integer/],
    [['--data', 'x', '--seed', '9223372036854775808'], /--seed must fit a signed 64-bit integer/],
    [['--data', 'x', '--engine', 'gpu'], /--engine must be "wasm" or "ts"/],
    [['--data', 'x', '--mode', 'raw', '--alarm-level', '3'], /apply only to --mode quality/],
    [['--data', 'x', '--latest-weight', '2'], /--latest-weight must be between 0 and 1/],
    [['--data', 'x', '--alarm-level', '0'], /--alarm-level must be between/],
    [['--data', 'x', '--detector-name', 'a/b'], /--detector-name must be letters/],
  ])('rejects %j with exit code 2', async (argv, message) => {
    const c = capture();
    expect(await runEvalCommand(argv, c.io)).toBe(2);
    expect(c.stderr()).toMatch(message);
    expect(c.stderr()).toMatch(/^rcf-stream eval: .*\(see rcf-stream eval --help\)\n$/);
    expect(c.stdout()).toBe('');
  });

  it('needs --data when there is no corpus at the default place', async () => {
    const c = capture();
    expect(await runEvalCommand([], c.io, root)).toBe(2);
    expect(c.stderr()).toMatch(/--data is required/);
  });

  it('exits 1 when the corpus cannot be read', async () => {
    const missing = capture();
    expect(await runEvalCommand(['--data', join(root, 'nowhere'), '--quiet'], missing.io)).toBe(1);
    expect(missing.stderr()).toMatch(/^rcf-stream eval: corpus folder not found/);

    const bad = join(root, 'bad');
    await mkdir(join(bad, 'data', 'cat'), { recursive: true });
    await mkdir(join(bad, 'labels'), { recursive: true });
    await writeFile(join(bad, 'data', 'cat', 'f.csv'), 'timestamp,value\n2020-01-01 00:00:00,abc\n');
    await writeFile(join(bad, 'labels', 'combined_windows.json'), '{"cat/f.csv": []}');
    const c = capture();
    expect(await runEvalCommand(['--data', bad, '--quiet'], c.io)).toBe(1);
    expect(c.stderr()).toMatch(/bad value "abc"/);
    expect(existsSync(join(bad, 'results'))).toBe(false);
  });
});
