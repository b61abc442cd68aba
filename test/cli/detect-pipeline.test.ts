/**
 * `detect` as wiring of the pipeline (LineSource -> BatchProcessor -> sinks): what each stage
 * sets aside reaches the report, the dead-letter file and the summary, in input order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuilt, runCli } from './cli-support.js';

let dir: string;
beforeAll(() => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'rcf-detect-pipeline-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);

describe('detect over the pipeline', () => {
  it('sets aside an anomaly whose notification cannot be made, reports it past the bad-line cap, and counts it as bad, not scored', async () => {
    const records: string[] = [];
    for (let i = 0; i < 300; i++) records.push(i % 10 === 5 ? `{"time":${i},"value":` : `{"time":${i},"value":${30 + (i % 3) / 10}}`);
    // 30 malformed lines above (the first 20 are shown), then an anomaly with a time JSON cannot serialise.
    records.push(`{"time":${'['.repeat(5000)}${']'.repeat(5000)},"value":5000}`, '{"time":301,"value":30.1}');
    const file = join(dir, 'deep.ndjson');
    writeFileSync(file, `${records.join('\n')}\n`);
    const deadLetter = join(dir, 'deep.dlq');
    const r = await runCli(['detect', file, '--time-field', 'time', '--notify', 'stderr', '--dead-letter', deadLetter, '--stats-json', '-']);
    expect(r.code, r.stderr).toBe(0);
    const err = lines(r.stderr);
    expect(err.filter((l) => /: line \d+: malformed JSON/.test(l))).toHaveLength(20);
    expect(err).toContain('rcf-stream detect: line 301: notification: too deeply nested to serialise');
    const stats = JSON.parse(err.at(-1)!) as { records: number; badRecords: number; badRecordsByKind: Record<string, number>; lines: number };
    expect(stats).toMatchObject({ records: 271, badRecords: 31, badRecordsByKind: { 'malformed JSON': 30, unserialisable: 1 }, lines: 302 });
    // Neither its output line nor its notification was written.
    expect(lines(r.stdout)).toHaveLength(271);
    expect(r.stdout).not.toContain('"value":5000');
    expect(r.stderr).not.toMatch(/Value=5000/);
    const letters = lines(readFileSync(deadLetter, 'utf8')).map((l) => JSON.parse(l) as { line: number; reason: string; input?: string });
    expect(letters.map((l) => l.line)).toEqual([...Array.from({ length: 30 }, (_, k) => 10 * k + 6), 301]);
    expect(letters.at(-1)!.input!.startsWith('{"time":[[[')).toBe(true);
  }, 60_000);

  it('reports the lines before a CSV header, then the header that does not fit (exit 2)', async () => {
    const file = join(dir, 'header.csv');
    writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0x0a]), Buffer.from('time,temp\n1,2\n')]));
    const r = await runCli(['detect', '--format', 'csv', file]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr).slice(0, 2)).toEqual([
      'rcf-stream detect: line 1: invalid UTF-8',
      'rcf-stream detect: CSV header (line 2): fields: CSV header has no column "value" (columns: "time", "temp")',
    ]);
  });

  it('writes each batch\'s results, then its notifications, on a shared stdout', async () => {
    const records = Array.from({ length: 400 }, (_, i) => JSON.stringify({ time: i, value: i === 300 ? 90 : 30 + (i % 5) / 10 }));
    const r = await runCli(['detect', '--notify', 'stdout', '--quiet', '--time-field', 'time'], { input: `${records.join('\n')}\n` });
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    const note = out.findIndex((l) => l.startsWith('Anomaly detected: Time=300,'));
    // One batch: all 400 results, then the notification.
    expect(note).toBe(400);
    expect(out.slice(0, 400).every((l) => l.startsWith('{"time":'))).toBe(true);
  });
});
