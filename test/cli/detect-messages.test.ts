/** detect's messages for options that cannot work, found before (or instead of) a useless run. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { UsageError } from '../../src/cli/args.js';
import { parseDetectArgs, runDetect } from '../../src/cli/detect-command.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rcf-messages-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function detect(argv: string[]): Promise<{ exitCode: number; stderr: string; stdout: string }> {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  let stderr = '';
  let stdout = '';
  io.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  io.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const r = await runDetect(parseDetectArgs([...argv, '--no-worker'])!, io as never);
  return { exitCode: r.exitCode, stderr, stdout };
}

describe('detect messages', () => {
  it('refuses --state-every without --state, and --explain where the output leaves the explanation out', () => {
    expect(() => parseDetectArgs(['--state-every', '100'])).toThrow(new UsageError('--state-every needs --state FILE (where the models are saved)'));
    expect(() => parseDetectArgs(['--explain', '--shape', 'flink'])).toThrow(/--explain adds "explanation", which --shape flink .* leaves out/);
    expect(() => parseDetectArgs(['--explain', '--output-fields', 'time,score'])).toThrow(/--output-fields leaves out/);
    expect(parseDetectArgs(['--explain', '--output-fields', 'time,score,explanation'])!.explain).toBe(true);
  });

  it('finds an unwritable --state before reading the input', async () => {
    const input = join(dir, 'in.ndjson');
    writeFileSync(input, '{"value":1}\n');
    const output = join(dir, 'never.ndjson');
    const r = await detect([input, '--state', join(dir, 'no-such-dir', 'models.state'), '--output', output]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot write the state file \(--state\) ".*no-such-dir\/models.state": no such file or directory/);
    // Nothing was scored or written.
    expect(existsSync(output) ? readFileSync(output, 'utf8') : '').toBe('');
  });

  it('finds an unwritable --plot before reading the input', async () => {
    const input = join(dir, 'in-plot.ndjson');
    writeFileSync(input, '{"value":1}\n');
    const output = join(dir, 'never-plot.ndjson');
    const r = await detect([input, '--plot', join(dir, 'no-such-dir', 'chart.html'), '--output', output]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot write the chart \(--plot\) ".*no-such-dir\/chart.html": no such file or directory/);
    expect(existsSync(output) ? readFileSync(output, 'utf8') : '').toBe('');
  });

  it('shows the first 20 bad lines, then counts; says the input looks like CSV and exits 1 when nothing could be scored', async () => {
    const input = join(dir, 'readings.csv');
    writeFileSync(input, `time,value\n${Array.from({ length: 300 }, (_, i) => `${i},${30 + (i % 3)}`).join('\n')}\n`);
    const r = await detect([input]);
    expect(r.exitCode).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => /: line \d+: malformed JSON/.test(l))).toHaveLength(20);
    expect(r.stderr).toMatch(/further bad lines are counted, not shown/);
    expect(r.stderr).toMatch(/301 bad records \(malformed JSON: 301\)/);
    expect(lines.at(-1)).toBe('rcf-stream detect: no record could be scored: the input looks like CSV: add --format csv');
  });

  it('names the field that never appears', async () => {
    const input = join(dir, 'keyed.ndjson');
    writeFileSync(input, `${Array.from({ length: 50 }, (_, i) => JSON.stringify({ value: i, sensor: 'a' })).join('\n')}\n`);
    const r = await detect([input, '--key-field', 'nosuch']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toBe('rcf-stream detect: no record could be scored: no line has all of the fields "value", "nosuch": check --fields, --key-field');
    // Some good lines: exit 0 as before.
    const ok = await detect([input]);
    expect(ok.exitCode).toBe(0);
  });

  it('names the settings that differ from the saved models', async () => {
    const input = join(dir, 'state.ndjson');
    writeFileSync(input, `${Array.from({ length: 100 }, (_, i) => JSON.stringify({ value: i % 7 })).join('\n')}\n`);
    const state = join(dir, 'models.state');
    expect((await detect([input, '--state', state, '--trees', '30'])).exitCode).toBe(0);
    const r = await detect([input, '--state', state, '--trees', '20', '--seed', '5']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/other detection settings \(--trees: saved 30, now 20; --seed: saved 0, now 5\)\. Run with the same settings, or use another --state file\./);
  });

  it('spells a differing threshold as the option takes it, and says what a file that is no state file holds', async () => {
    const input = join(dir, 'state2.ndjson');
    writeFileSync(input, `${Array.from({ length: 100 }, (_, i) => JSON.stringify({ value: i % 7 })).join('\n')}\n`);
    const state = join(dir, 'models2.state');
    expect((await detect([input, '--state', state, '--threshold', 'auto'])).exitCode).toBe(0);
    const r = await detect([input, '--state', state]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/\(--threshold: saved auto, now 3\)/);
    const notState = join(dir, 'notstate.bin');
    writeFileSync(notState, 'hello\n');
    const n = await detect([input, '--state', notState]);
    expect(n.exitCode).toBe(1);
    expect(n.stderr).toMatch(/the state file ".*notstate\.bin" is unusable: .*not an rcf-stream model snapshot: its 6 bytes start with "hello\\n" \(text\); a model snapshot starts with "RCFSVC"/);
  });
});
