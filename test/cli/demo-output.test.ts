/**
 * `rcf-stream demo` output pinned: the expected texts in fixtures/ were recorded from the
 * demo as it was before it ran on the pipeline (src/pipeline), so the port must print
 * byte for byte the same header, anomaly lines and summary (records/s left out: it is a
 * measurement). Case 4 also hung before the port: a fast --rate with a finite --count
 * never ended once the pacing loop fell a batch behind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/args.js';
import { runDemoCommand } from '../../src/cli/demo-command.js';
import { ROOT, requireBuilt, runCli } from './cli-support.js';

const FIXTURES = join(ROOT, 'test', 'cli', 'fixtures');

function withoutRate(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('  records/s '))
    .join('\n');
}

beforeAll(() => requireBuilt());

describe('rcf-stream demo output', () => {
  const cases: [string, string[]][] = [
    ['demo-expected.txt', []],
    ['demo-expected2.txt', ['--count', '3000', '--seed', '7', '--trees', '20']],
    ['demo-expected3.txt', ['--count', '5000', '--threshold', 'auto']],
    ['demo-expected4.txt', ['--count', '3000', '--engine', 'ts', '--rate', '100000']],
  ];
  for (const [file, args] of cases) {
    it(`demo ${args.join(' ') || '(defaults)'} prints the recorded text`, async () => {
      const r = await runCli(['demo', ...args]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\n {2}records\/s +[\d,]+\n$/);
      expect(withoutRate(r.stdout)).toBe(readFileSync(join(FIXTURES, file), 'utf8'));
    });
  }
});

describe('rcf-stream demo progress', () => {
  function capture(isTTY: boolean): { io: CliIo; stdout: () => string; stderr: () => string } {
    let out = '';
    let err = '';
    const stdout = new PassThrough();
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const stderr = Object.assign(new PassThrough(), { isTTY });
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    return { io: { stdin: new PassThrough(), stdout, stderr }, stdout: () => out, stderr: () => err };
  }

  it('paced, on a terminal: a status line on stderr from the first batch, cleared at the end', async () => {
    const c = capture(true);
    expect(await runDemoCommand(['--count', '300', '--rate', '100000', '--engine', 'ts', '--trees', '10'], c.io)).toBe(0);
    const err = c.stderr();
    expect(err).toMatch(/^\r\x1b\[K\d[\d,]* records, \d+ anomalies, \d+ s \(Ctrl-C stops\)/);
    expect(err.endsWith('\r\x1b[K')).toBe(true);
    expect(c.stdout()).toMatch(/\n {2}records +300\n/);
  });

  it('not on a terminal: nothing on stderr', async () => {
    const c = capture(false);
    expect(await runDemoCommand(['--count', '300', '--rate', '100000', '--engine', 'ts', '--trees', '10'], c.io)).toBe(0);
    expect(c.stderr()).toBe('');
  });
});
