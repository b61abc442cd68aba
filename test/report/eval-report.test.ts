/**
 * eval --report on files with several value fields (eval --fields): one row per record,
 * the first field drawn; and --report refused with --cv (nothing to chart per series).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNabTimestamp } from '../../src/eval/nab-corpus.js';
import { runEvalCommand } from '../../src/cli/eval-command.js';

const ROWS = 600;
const START = Date.UTC(2021, 5, 1);
const at = (row: number): string => formatNabTimestamp(START + row * 300_000);
const cpu = (i: number): number => 20 + (i % 5) + (i === 400 ? 50 : 0);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eval-report-'));
  await mkdir(join(dir, 'data', 'alpha'), { recursive: true });
  await mkdir(join(dir, 'labels'), { recursive: true });
  const lines = ['timestamp,cpu,mem'];
  for (let i = 0; i < ROWS; i++) lines.push(`${at(i)},${cpu(i)},${900 + (i % 3)}`);
  await writeFile(join(dir, 'data', 'alpha', 'one.csv'), `${lines.join('\n')}\n`);
  await writeFile(join(dir, 'labels', 'combined_windows.json'), JSON.stringify({ 'alpha/one.csv': [[at(390), at(410)]] }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function io(): { stdin: PassThrough; stdout: PassThrough; stderr: PassThrough; err: () => string } {
  let err = '';
  const stderr = new PassThrough();
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { stdin: new PassThrough(), stdout: new PassThrough().resume(), stderr, err: () => err };
}

describe('eval --report with several fields', () => {
  it('charts one point per record, the first field', async () => {
    const report = join(dir, 'report.html');
    expect(await runEvalCommand(['--data', dir, '--fields', 'cpu,mem', '--report', report, '--json', '--quiet'], io())).toBe(0);
    const html = await readFile(report, 'utf8');
    const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const data = JSON.parse(json) as { series: { name: string; rows: number; value: number[] }[] };
    expect(data.series.map((s) => [s.name, s.rows])).toEqual([['alpha/one.csv', ROWS]]);
    const drawn = data.series[0]!.value;
    expect(drawn[0]).toBe(cpu(0));
    expect(drawn).toContain(cpu(400));
    // No mem value (900 and up) is drawn as if it were a record of its own.
    expect(Math.max(...drawn)).toBe(cpu(400));
  });

  it('is refused with --cv', async () => {
    const c = io();
    expect(await runEvalCommand(['--data', dir, '--cv', 'categories', '--report', join(dir, 'cv.html'), '--quiet'], c)).toBe(2);
    expect(c.err()).toContain('--report');
  });
});
