import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNdjsonLine, temperatureRecords } from '../../src/generate/temperature.js';
import { main, runExternal } from '../../src/cli/main.js';
import { loadVectorSet } from '../support/vectors.js';
import { MAIN, ROOT, requireBuilt, lines, runCli } from './cli-support.js';

let dir: string;
/** 20,000 generator records (seed 42) with labels. */
let stream: string;

beforeAll(async () => {
  requireBuilt();
  dir = await mkdtemp(join(tmpdir(), 'rcf-cli-test-'));
  stream = join(dir, 'stream.ndjson');
  writeFileSync(stream, Array.from(temperatureRecords({ count: 20_000, seed: 42, labels: true }), formatNdjsonLine).join(''));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** main() in this process with captured output (for cases that need no separate process). */
async function mainInProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end();
  const code = await main(argv, { stdin, stdout, stderr });
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout: out, stderr: err };
}

const parse = (text: string): Record<string, unknown>[] => lines(text).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('rcf-stream', () => {
  it('prints its version and help', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await runCli(['--version'])).stdout).toBe(`${pkg.version}\n`);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: rcf-stream <command>/);
    for (const command of ['generate', 'detect', 'demo']) {
      const r = await runCli([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: rcf-stream ${command}`));
    }
  });

  it('starts with a shebang, so it works as the package bin', () => {
    expect(readFileSync(MAIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('rejects an unknown command', async () => {
    const r = await runCli(['detekt']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "detekt"/);
  });

  it('dispatches eval and run to their modules', async () => {
    for (const command of ['eval', 'run']) {
      const r = await runCli([command, '--help']);
      expect(r.stderr, command).not.toMatch(/not available|could not be loaded/);
    }
  });
});

describe('commands owned by other modules', () => {
  const sink = (): { text: string; stream: PassThrough } => {
    const stream = new PassThrough();
    const out = { text: '', stream };
    stream.on('data', (d: Buffer) => (out.text += d.toString()));
    return out;
  };

  it('says so, with exit code 1, when a command module is missing', async () => {
    const err = sink();
    const code = await runExternal('eval', './no-such-command.js', 'runEvalCommand', [], { stdin: new PassThrough(), stdout: sink().stream, stderr: err.stream });
    expect(code).toBe(1);
    expect(err.text).toBe('rcf-stream: the "eval" command is not available in this build\n');
  });

  it('says so when the module lacks the entry point', async () => {
    const err = sink();
    const code = await runExternal('run', './args.js', 'runServiceCommand', [], { stdin: new PassThrough(), stdout: sink().stream, stderr: err.stream });
    expect(code).toBe(1);
    expect(err.text).toMatch(/"run" command is not available in this build \(\.\/args\.js lacks runServiceCommand\)/);
  });
});

describe('rcf-stream generate', () => {
  it('writes the reference scenario as NDJSON', async () => {
    const r = await runCli(['generate', '--count', '5', '--seed', '3', '--labels']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(Array.from(temperatureRecords({ count: 5, seed: 3, labels: true }), formatNdjsonLine).join(''));
    expect(r.stderr).toMatch(/^rcf-stream generate: 5 records \(\d+ injected outliers\)\n$/);
  });

  it('rejects unusable options with one line and exit code 2', async () => {
    for (const args of [['--count', '-1'], ['--outlier-rate', '2'], ['--rate', '0'], ['--bogus']]) {
      const r = await runCli(['generate', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(lines(r.stderr)[0], args.join(' ')).toMatch(/^rcf-stream generate: /);
    }
  });

  it('ends quietly when its reader goes away (generate --count inf | head)', async () => {
    const r = await pipeToHead(['generate', '--count', 'inf'], 3);
    expect(r.head).toHaveLength(3);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/output closed early/);
    expect(r.stderr).not.toMatch(/Error|EPIPE/);
  });
});

/** Runs the command, reads `count` lines of stdout, then closes the pipe like `| head`. */
async function pipeToHead(args: string[], count: number): Promise<{ head: string[]; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let buffered = '';
  const head: string[] = [];
  const closed = once(child, 'close');
  for await (const chunk of child.stdout) {
    buffered += (chunk as Buffer).toString();
    const got = buffered.split('\n');
    if (got.length > count) {
      head.push(...got.slice(0, count));
      break;
    }
  }
  child.stdout.destroy();
  // A program that does not notice its reader is gone would run forever: stop it, and fail.
  const stopper = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await closed) as [number | null];
  clearTimeout(stopper);
  return { head, code, stderr };
}

describe('rcf-stream detect', () => {
  it('adds score and anomaly to every record, with scores 0 during warm-up', async () => {
    const r = await runCli(['detect', stream]);
    expect(r.code).toBe(0);
    const out = parse(r.stdout);
    expect(out).toHaveLength(20_000);
    expect(Object.keys(out[100]!)).toEqual(['time', 'value', 'label', 'score', 'anomaly']);
    expect(out.slice(0, 64).every((o) => o.score === 0 && o.anomaly === false)).toBe(true);
    expect(out.slice(64).every((o) => (o.score as number) > 0)).toBe(true);
    // --threshold 3.0 by default.
    expect(out.every((o) => o.anomaly === (o.score as number) >= 3)).toBe(true);
    expect(out.filter((o) => o.anomaly).length).toBeGreaterThan(50);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^rcf-stream detect: 20,000 records in [\d.]+ s \([\d,]+ records\/s\), [\d,]+ anomalies, 0 bad records\n$/);
  });

  it('reads stdin when no file is given, with identical results', async () => {
    const fromFile = await runCli(['detect', stream]);
    const fromStdin = await runCli(['detect'], { input: readFileSync(stream) });
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stdout).toBe(fromFile.stdout);
  });

  it('gives identical output with the WASM and TypeScript engines, and on the main thread', async () => {
    const wasm = await runCli(['detect', stream, '--engine', 'wasm']);
    const ts = await runCli(['detect', stream, '--engine', 'ts']);
    const inline = await runCli(['detect', stream, '--no-worker']);
    expect(wasm.stdout.length).toBeGreaterThan(0);
    expect(ts.stdout).toBe(wasm.stdout);
    expect(inline.stdout).toBe(wasm.stdout);
  });

  it('prints notifications in the reference format (Java %f)', async () => {
    const r = await runCli(['detect', stream, '--time-field', 'time', '--notify', 'stderr', '--only-anomalies']);
    const anomalies = parse(r.stdout);
    const notes = lines(r.stderr).filter((l) => l.startsWith('Anomaly detected'));
    expect(anomalies.length).toBeGreaterThan(0);
    expect(notes).toHaveLength(anomalies.length);
    anomalies.forEach((a, i) => {
      const [, time, value, score] = notes[i]!.match(/^Anomaly detected: Time=(\d+), Value=(\d+\.\d{6}), Score=(\d+\.\d{6})$/)!;
      expect(Number(time)).toBe(a.time);
      // Generator values have two decimals, so toFixed agrees with Java's %f on them.
      expect(value).toBe((a.value as number).toFixed(6));
      expect(Math.abs(Number(score) - (a.score as number))).toBeLessThanOrEqual(5e-7);
    });
  });

  it('reproduces the reference Flink sample’s output shape', async () => {
    const r = await runCli(['detect', stream, '--shape', 'flink', '--only-anomalies']);
    const out = parse(r.stdout);
    expect(out.length).toBeGreaterThan(0);
    for (const o of out) expect(Object.keys(o)).toEqual(['time', 'value', 'score']);
    const same = parse((await runCli(['detect', stream, '--output-fields', 'time,value,score', '--only-anomalies'])).stdout);
    expect(same).toEqual(out);
  });

  it('writes to --output and machine-readable stats to --stats-json', async () => {
    const output = join(dir, 'out.ndjson');
    const statsFile = join(dir, 'stats.json');
    const r = await runCli(['detect', stream, '--output', output, '--stats-json', statsFile, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(lines(readFileSync(output, 'utf8'))).toHaveLength(20_000);
    const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as Record<string, unknown>;
    expect(stats).toMatchObject({ records: 20_000, badRecords: 0, lines: 20_000, models: 1, evictions: 0, outputClosed: false, engine: 'wasm' });
    expect(stats.anomalies).toBe(lines(readFileSync(output, 'utf8')).filter((l) => l.includes('"anomaly":true')).length);
    expect(stats.bytesRead).toBe(readFileSync(stream).length);
  });

  it('matches AWS ThresholdedRandomCutForest on every row with --threshold auto --parity aws', async () => {
    const set = loadVectorSet('temp_trcf_t50_s1');
    const file = join(dir, 'trcf.ndjson');
    writeFileSync(file, Array.from(set.inputs, (x, i) => `{"i":${i},"x0":${x}}\n`).join(''));
    const r = await runCli(['detect', file, '--fields', 'x0', '--seed', String(set.config.randomSeed), '--threshold', 'auto', '--parity', 'aws', '--output-fields', 'i,score,grade,threshold']);
    expect(r.code).toBe(0);
    const out = parse(r.stdout);
    expect(out).toHaveLength(set.config.rows);
    let mismatched = 0;
    out.forEach((o, i) => {
      if (o.i !== i || o.score !== set.score[i] || o.grade !== set.grade![i] || o.threshold !== set.threshold![i]) mismatched++;
    });
    expect(mismatched).toBe(0);
    expect(out.filter((o) => (o.grade as number) > 0).length).toBeGreaterThan(100);
  });

  it('adds grade and threshold with --threshold auto, with or without AWS parity', async () => {
    const parity = parse((await runCli(['detect', stream, '--threshold', 'auto', '--parity', 'aws'])).stdout);
    expect(Object.keys(parity[500]!)).toEqual(['time', 'value', 'label', 'score', 'anomaly', 'grade', 'threshold']);
    // TRCF: an anomaly is exactly a positive grade.
    expect(parity.every((o) => o.anomaly === (o.grade as number) > 0)).toBe(true);
    expect(parity.some((o) => o.anomaly)).toBe(true);

    const quality = parse((await runCli(['detect', stream, '--threshold', 'auto'])).stdout);
    expect(Object.keys(quality[500]!)).toEqual(['time', 'value', 'label', 'score', 'anomaly', 'grade', 'threshold']);
    expect(quality.some((o) => o.anomaly)).toBe(true);
    expect(quality.filter((o) => o.anomaly).every((o) => (o.grade as number) > 0)).toBe(true);
    // A different strategy from TRCF parity: the two must not agree record for record.
    expect(quality.map((o) => o.anomaly)).not.toEqual(parity.map((o) => o.anomaly));
  });

  it('explains each record per field in the KDA shape', async () => {
    const file = join(dir, 'two.ndjson');
    const rows = Array.from({ length: 400 }, (_, i) => ({ t: i, a: 10 + (i % 5) * 0.1, b: 50 + (i % 3) * 0.1 }));
    rows.push({ t: 400, a: 10.2, b: 90 });
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
    const r = await runCli(['detect', file, '--fields', 'a,b', '--explain', '--shingle', '2']);
    const out = parse(r.stdout);
    const last = out[400]!;
    const explanation = last.explanation as Record<string, { ATTRIBUTION_SCORE: number; STRENGTH: number; DIRECTION: string }>;
    expect(Object.keys(explanation)).toEqual(['a', 'b']);
    expect(Object.keys(explanation.a!)).toEqual(['ATTRIBUTION_SCORE', 'STRENGTH', 'DIRECTION']);
    expect(explanation.b!.DIRECTION).toBe('HIGH');
    expect(explanation.b!.STRENGTH).toBeGreaterThan(0.5);
    expect(explanation.a!.ATTRIBUTION_SCORE + explanation.b!.ATTRIBUTION_SCORE).toBeCloseTo(last.score as number, 6);
  });

  it('keeps one model per key, bounded by --max-keys, and reports evictions', async () => {
    const file = join(dir, 'keyed.ndjson');
    const keys = ['north', 'south', 'east'];
    writeFileSync(file, Array.from({ length: 3000 }, (_, i) => `{"sensor":"${keys[i % 3]}","value":${30 + (i % 7) * 0.1}}\n`).join(''));
    const all = await runCli(['detect', file, '--key-field', 'sensor', '--stats-json', '-']);
    expect(all.code).toBe(0);
    expect(all.stderr).toMatch(/3 keys \(0 evicted\)/);
    // Each key has its own warm-up of 64 records.
    const out = parse(all.stdout);
    for (const key of keys) {
      const own = out.filter((o) => o.sensor === key);
      expect(own.slice(0, 64).every((o) => o.score === 0)).toBe(true);
      expect(own[64]!.score).toBeGreaterThan(0);
    }
    const bounded = await runCli(['detect', file, '--key-field', 'sensor', '--max-keys', '2', '--stats-json', '-']);
    expect(bounded.code).toBe(0);
    expect(bounded.stderr).toMatch(/more than 2 keys; dropping least recently used models/);
    const stats = JSON.parse(lines(bounded.stderr).at(-1)!) as { models: number; evictions: number };
    // Round-robin over three keys with room for two: every record after the second evicts.
    expect(stats).toMatchObject({ models: 2, evictions: 2998 });
  });

  it('ends quietly when its reader goes away (detect | head)', async () => {
    const big = join(dir, 'big.ndjson');
    writeFileSync(big, Array.from(temperatureRecords({ count: 200_000, seed: 1 }), formatNdjsonLine).join(''));
    const r = await pipeToHead(['detect', big], 5);
    expect(r.head).toHaveLength(5);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/Error|EPIPE/);
    expect(r.stderr).toMatch(/output closed early\n$/);
  });

  it('writes results of a live stream without waiting for a full batch, and sums up on Ctrl-C', async () => {
    const child = spawn(process.execPath, [MAIN, 'detect'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = once(child, 'close');
    let code: number | null;
    try {
      // 100 records, far fewer than a batch, and the input stays open.
      child.stdin.write(Array.from(temperatureRecords({ count: 100 }), formatNdjsonLine).join(''));
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (lines(stdout).length === 100) resolve();
        });
      });
      child.kill('SIGINT');
      [code] = (await closed) as [number | null];
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(code).toBe(130);
    expect(parse(stdout).map((o) => o.time)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(stderr).toMatch(/^rcf-stream detect: 100 records in .*; interrupted\n$/);
  });

  it('rejects unusable options with a one-line message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--trees', '0'], /--trees must be between 1 and 1000, got 0/],
      [['--trees', 'many'], /--trees must be an integer/],
      [['--sample-size', '5'], /--sample-size must be between 10 and 4096/],
      [['--shingle', '31'], /--shingle must be between 1 and 30/],
      [['--time-decay=-1'], /--time-decay must be >= 0/],
      [['--time-decay', '-1'], /--time-decay/],
      [['--threshold', 'high'], /--threshold must be a number or "auto"/],
      [['--parity', 'aws'], /--parity applies only to --threshold auto/],
      [['--engine', 'gpu'], /--engine must be "wasm" or "ts"/],
      [['--format', 'xml'], /--format must be "ndjson" or "csv"/],
      [['--seed', '1.5'], /--seed must be an integer/],
      [['--fields', 'a,,b'], /--fields must be a comma-separated list/],
      [['--fields', 'a,a'], /--fields: field "a" is listed twice/],
      [['--max-keys', '5'], /--max-keys needs --key-field/],
      [['--shape', 'flink', '--output-fields', 'a'], /cannot be combined/],
      [['--notify', 'email'], /--notify must be "stderr" or "stdout"/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    // In-process: the same main() the binary runs, without a node process per case.
    for (const [args, message] of cases) {
      const r = await mainInProcess(['detect', stream, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(lines(r.stderr)[0], args.join(' ')).toMatch(new RegExp(`^rcf-stream detect: .*${message.source}`));
      expect(r.stdout).toBe('');
    }
    // And once through the real binary: the exit status reaches the shell.
    const r = await runCli(['detect', stream, '--trees', '0']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^rcf-stream detect: .*--trees must be between 1 and 1000, got 0/)]);
  });

  it('refuses to write its output over its input', async () => {
    const copy = join(dir, 'precious.ndjson');
    writeFileSync(copy, readFileSync(stream));
    const r = await runCli(['detect', copy, '--output', copy]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--output names the input file/);
    expect(readFileSync(copy).equals(readFileSync(stream))).toBe(true);
  });

  it('fails with exit code 1 on an unreadable file', async () => {
    const missing = await runCli(['detect', join(dir, 'nope.ndjson')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read ".*nope\.ndjson": no such file or directory/);
    const directory = await runCli(['detect', dir]);
    expect(directory.code).toBe(1);
    expect(directory.stderr).toMatch(/is a directory/);
    const unwritable = await runCli(['detect', stream, '--output', join(dir, 'no', 'such', 'dir.ndjson')]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/cannot write/);
  });
});

describe('rcf-stream detect: bad input is counted, reported, set aside, and the stream goes on', () => {
  const good = (t: number): string => `{"time":${t},"value":30.${t % 10}}`;

  it('handles every kind of bad NDJSON line', async () => {
    const file = join(dir, 'bad.ndjson');
    const tooLong = `{"time":9,"value":30,"pad":"${'x'.repeat(1024 * 1024)}"}`;
    const parts: (string | Buffer)[] = [
      good(1), // line 1
      '{"time":2,"value":', // 2 malformed JSON
      '{"time":3}', // 3 missing field
      '{"time":4,"value":"warm"}', // 4 not a number
      '{"time":5,"value":NaN}', // 5 NaN is not JSON
      '{"time":6,"value":"NaN"}', // 6 NaN as a string
      '{"time":7,"value":1e999}', // 7 overflows to Infinity
      '{"time":8,"value":"Infinity"}', // 8
      tooLong, // 9 over 1 MiB
      Buffer.from([0x7b, 0x22, 0x76, 0x22, 0x3a, 0xff, 0x7d]), // 10 invalid UTF-8
      '[30.5]', // 11 not an object
      '{"time":12,"value":null}', // 12
      good(13), // 13
    ];
    writeFileSync(file, Buffer.concat(parts.flatMap((p) => [Buffer.isBuffer(p) ? p : Buffer.from(p), Buffer.from('\n')])));
    const deadLetter = join(dir, 'bad.dead.ndjson');
    const r = await runCli(['detect', file, '--dead-letter', deadLetter, '--stats-json', '-']);

    expect(r.code).toBe(0);
    expect(parse(r.stdout).map((o) => o.time)).toEqual([1, 13]);
    const reports = lines(r.stderr).filter((l) => /^rcf-stream detect: line \d+: /.test(l));
    expect(reports.map((l) => Number(l.match(/line (\d+):/)![1]))).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(reports[0]).toMatch(/line 2: malformed JSON/);
    expect(reports[1]).toMatch(/line 3: missing field "value"/);
    expect(reports[2]).toMatch(/line 4: field "value" is not a number: "warm"/);
    expect(reports[5]).toMatch(/line 7: field "value" is not finite/);
    expect(reports[7]).toMatch(/line 9: line too long/);
    expect(reports[8]).toMatch(/line 10: invalid UTF-8/);

    const stats = JSON.parse(lines(r.stderr).at(-1)!) as { records: number; badRecords: number; badRecordsByKind: Record<string, number> };
    expect(stats.records).toBe(2);
    expect(stats.badRecords).toBe(11);
    expect(stats.badRecordsByKind).toEqual({
      'malformed JSON': 2,
      'missing field': 1,
      // "NaN", "Infinity" and null are strings or values that are not numbers; 1e999 parses to Infinity.
      'not a number': 4,
      'not finite': 1,
      'line too long': 1,
      'invalid UTF-8': 1,
      'not a JSON object': 1,
    });
    expect(r.stderr).toMatch(/2 records in .* 11 bad records \(/);

    const letters = parse(readFileSync(deadLetter, 'utf8'));
    expect(letters.map((l) => l.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(letters[0]).toMatchObject({ line: 2, input: '{"time":2,"value":' });
    expect(letters[0]!.reason).toMatch(/^malformed JSON/);
    expect(letters[8]).toMatchObject({ line: 10, reason: 'invalid UTF-8', inputBase64: Buffer.from([0x7b, 0x22, 0x76, 0x22, 0x3a, 0xff, 0x7d]).toString('base64') });
  });

  it('reports records missing one of several fields', async () => {
    const r = await runCli(['detect', '--fields', 'a,b', '--stats-json', '-'], { input: '{"a":1,"b":2}\n{"a":1}\n{"a":1,"b":"x"}\n{"a":3,"b":4}\n' });
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toHaveLength(2);
    expect(r.stderr).toMatch(/line 2: missing field "b"/);
    expect(r.stderr).toMatch(/line 3: field "b" is not a number/);
  });

  it('handles CSV rows with the wrong column count and bad numbers', async () => {
    const csv = ['time,value', '0,30.1', '1,30.2,extra', '2', '3,NaN', '4,Infinity', '5,abc', '6,30.3'].join('\n');
    const deadLetter = join(dir, 'csv.dead.ndjson');
    const r = await runCli(['detect', '--format', 'csv', '--time-field', 'time', '--dead-letter', deadLetter], { input: csv });
    expect(r.code).toBe(0);
    expect(parse(r.stdout).map((o) => o.time)).toEqual([0, 6]);
    expect(parse(r.stdout)[0]).toEqual({ time: 0, value: 30.1, score: 0, anomaly: false });
    expect(r.stderr).toMatch(/line 3: CSV row has 3 columns, header has 2/);
    expect(r.stderr).toMatch(/line 4: CSV row has 1 columns, header has 2/);
    expect(r.stderr).toMatch(/line 5: field "value" is not a number: "NaN"/);
    expect(r.stderr).toMatch(/line 6: field "value"/);
    expect(r.stderr).toMatch(/line 7: field "value" is not a number: "abc"/);
    expect(parse(readFileSync(deadLetter, 'utf8')).map((l) => l.line)).toEqual([3, 4, 5, 6, 7]);
  });

  it('refuses a CSV header without the mapped column (exit code 2)', async () => {
    const r = await runCli(['detect', '--format', 'csv', '--fields', 'temp'], { input: 'time,value\n0,1\n' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CSV header \(line 1\): fields: CSV header has no column "temp"/);
  });
});

describe('rcf-stream demo', () => {
  it('runs the reference scenario and sums it up', async () => {
    const r = await runCli(['demo', '--count', '5000']);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^rcf-stream demo: 5,000 temperature records \(seed 42\)/);
    const notes = out.filter((l) => l.startsWith('Anomaly detected: '));
    expect(notes.length).toBeGreaterThan(10);
    for (const n of notes) expect(n).toMatch(/^Anomaly detected: Time=\d+, Value=\d+\.\d{6}, Score=\d+\.\d{6}$/);
    const row = (name: string): string => out.find((l) => l.trimStart().startsWith(name))!.trim();
    expect(row('records')).toMatch(/^records\s+5,000$/);
    expect(row('anomalies')).toBe(`anomalies          ${notes.length}`);
    const caught = Number(row('caught').match(/, (\d+) of all/)![1]);
    const falseAlarms = Number(row('false alarms').match(/(\d+)$/)![1]);
    expect(caught + falseAlarms).toBe(notes.length);

    // The same records through generate | detect give the same anomalies.
    const generated = await runCli(['generate', '--count', '5000']);
    const detected = await runCli(['detect', '--only-anomalies', '--time-field', 'time', '--notify', 'stdout', '--output', join(dir, 'demo-out.ndjson')], {
      input: generated.stdout,
    });
    expect(lines(detected.stdout)).toEqual(notes);
  });
});

describe('rcf-stream demo --follow', () => {
  it('keeps going until interrupted, then prints the summary and exits 130', async () => {
    const child = spawn(process.execPath, [MAIN, 'demo', '--follow', '--rate', '500'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const closed = once(child, 'close');
    let code: number | null;
    try {
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          // Interrupt once it has been running long enough to report its first anomaly.
          if (stdout.includes('Anomaly detected')) resolve();
        });
      });
      child.kill('SIGINT');
      [code] = (await closed) as [number | null];
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(code).toBe(130);
    expect(stdout).toMatch(/^rcf-stream demo: endless temperature records/);
    expect(stdout).toMatch(/\nSummary\n {2}records +[\d,]+\n/);
  });
});
