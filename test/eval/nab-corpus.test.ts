import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { sharedDir } from '../support/vectors.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  formatNabTimestamp,
  loadNabCorpus,
  parseNabTimestamp,
  writeNabResults,
} from '../../src/eval/nab-corpus.js';
import { evaluateCorpus } from '../../src/eval/nab-score.js';

// The shared NAB subset beside the repository (../shared, or RCF_SHARED_DIR); missing data fails loudly.
const NAB_DIR = join(sharedDir(), 'data', 'nab');

const scratch: string[] = [];
async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nab-corpus-'));
  scratch.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(scratch.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A tiny NAB-layout folder: one category, one file, one window. */
async function tinyCorpus(csv: string, windows: unknown = { 'cat/f.csv': [] }): Promise<string> {
  const dir = await scratchDir();
  await mkdir(join(dir, 'data', 'cat'), { recursive: true });
  await mkdir(join(dir, 'labels'), { recursive: true });
  await writeFile(join(dir, 'data', 'cat', 'f.csv'), csv);
  await writeFile(join(dir, 'labels', 'combined_windows.json'), JSON.stringify(windows));
  return dir;
}

describe('NAB timestamps', () => {
  it('parses data and window spellings as UTC', () => {
    expect(parseNabTimestamp('2014-02-19 10:50:00')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    expect(parseNabTimestamp('2014-02-19 10:50:00.000000')).toBe(Date.UTC(2014, 1, 19, 10, 50));
    expect(parseNabTimestamp('2014-02-19 10:50:00.250000')).toBe(Date.UTC(2014, 1, 19, 10, 50, 0, 250));
    expect(parseNabTimestamp('2014-02-30 10:50:00')).toBeNaN();
    expect(parseNabTimestamp('yesterday')).toBeNaN();
    expect(formatNabTimestamp(Date.UTC(2014, 3, 1, 0, 5))).toBe('2014-04-01 00:05:00');
  });
});

describe('loadNabCorpus on the shared NAB subset', () => {
  it('loads every series the labels file lists, with its windows', async () => {
    const corpus = await loadNabCorpus(NAB_DIR);
    // Count series and windows straight from the JSON, independently of the loader.
    const labels = JSON.parse(await readFile(join(NAB_DIR, 'labels', 'combined_windows.json'), 'utf8')) as Record<
      string,
      unknown[]
    >;
    expect(corpus).toHaveLength(Object.keys(labels).length);
    // The shared subset holds 29 of NAB's 58 series (../shared/data/nab/README.md).
    expect(corpus).toHaveLength(29);
    expect(corpus.map((s) => s.name).sort()).toEqual(Object.keys(labels).sort());
    for (const s of corpus) expect(s.windows).toHaveLength(labels[s.name]!.length);
    const total = corpus.reduce((n, s) => n + s.windows.length, 0);
    expect(total).toBe(Object.values(labels).reduce((n, w) => n + w.length, 0));
    // 6 artificial; realKnownCause 2 + 1 + 3 + 4 + 5 + 2 + 2; realAWSCloudwatch 2 + 1 + 1 + 2 + 2;
    // realAdExchange 2 + 4; realTraffic 1 + 2; realTweets 3 + 3
    expect(total).toBe(48);

    // nyc_taxi.csv: 10,321 lines = header + 10,320 rows; first window 2014-10-30 15:30 .. 2014-11-03 22:30
    const taxi = corpus.find((s) => s.name === 'realKnownCause/nyc_taxi.csv')!;
    expect(taxi.category).toBe('realKnownCause');
    expect(taxi.file).toBe('nyc_taxi.csv');
    expect(taxi.timestamps).toHaveLength(10_320);
    expect(taxi.values).toHaveLength(10_320);
    expect(taxi.windows[0]).toEqual([Date.UTC(2014, 9, 30, 15, 30), Date.UTC(2014, 10, 3, 22, 30)]);
    // art_daily_no_noise.csv starts "2014-04-01 00:00:00,20.0"
    const flat = corpus.find((s) => s.name === 'artificialNoAnomaly/art_daily_no_noise.csv')!;
    expect(flat.timestamps[0]).toBe(Date.UTC(2014, 3, 1));
    expect(flat.values[0]).toBe(20);
    // ec2_request_latency_system_failure.csv repeats "2014-03-09 03:00:00" (file lines 558..):
    // rows stay in file order, repeats included (4,033 lines = header + 4,032 rows)
    const ec2 = corpus.find((s) => s.name === 'realKnownCause/ec2_request_latency_system_failure.csv')!;
    expect(ec2.timestamps).toHaveLength(4032);
    expect(ec2.timestamps[556]).toBe(Date.UTC(2014, 2, 9, 3));
    expect(ec2.timestamps[557]).toBe(Date.UTC(2014, 2, 9, 3));
  });

  it('scores the perfect detector 100 and the null detector 0 on it', async () => {
    const corpus = await loadNabCorpus(NAB_DIR);
    const labels = JSON.parse(await readFile(join(NAB_DIR, 'labels', 'combined_windows.json'), 'utf8')) as Record<
      string,
      unknown[]
    >;
    const windows = Object.values(labels).reduce((n, w) => n + w.length, 0);
    const perfect = corpus.map((s) => {
      const scores = new Float64Array(s.timestamps.length);
      for (const [start] of s.windows) scores[s.timestamps.indexOf(start)] = 1;
      return { ...s, scores };
    });
    const nothing = corpus.map((s) => ({ ...s, scores: new Float64Array(s.timestamps.length) }));
    const best = evaluateCorpus(perfect);
    const none = evaluateCorpus(nothing);
    for (const name of ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const) {
      expect(best[name].score).toBe(100);
      expect(best[name].raw).toBe(windows);
      expect(none[name].score).toBe(0);
    }
    expect(none.reward_low_FN_rate.raw).toBe(-2 * windows);
  });
});

describe('loadNabCorpus errors', () => {
  it('names a missing folder', async () => {
    await expect(loadNabCorpus('/nonexistent/nab')).rejects.toThrow('NAB corpus folder not found: /nonexistent/nab/data');
  });

  it('names the file and line of a malformed value', async () => {
    const dir = await tinyCorpus('timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n');
    await expect(loadNabCorpus(dir)).rejects.toThrow(/f\.csv:3: bad value "abc"/);
  });

  it('names the file and line of a malformed timestamp or row', async () => {
    const badTime = await tinyCorpus('timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 0:05,2\n');
    await expect(loadNabCorpus(badTime)).rejects.toThrow(/f\.csv:3: bad timestamp/);
    const badRow = await tinyCorpus('timestamp,value\n2014-04-01 00:00:00,1,7\n');
    await expect(loadNabCorpus(badRow)).rejects.toThrow(/f\.csv:2: expected 2 fields/);
    const badHeader = await tinyCorpus('time,val\n2014-04-01 00:00:00,1\n');
    await expect(loadNabCorpus(badHeader)).rejects.toThrow(/f\.csv:1: expected header/);
  });

  it('requires windows for every data file, and well-formed ones', async () => {
    const csv = 'timestamp,value\n2014-04-01 00:00:00,1\n';
    await expect(loadNabCorpus(await tinyCorpus(csv, {}))).rejects.toThrow(/no windows for data file "cat\/f\.csv"/);
    await expect(loadNabCorpus(await tinyCorpus(csv, { 'cat/f.csv': [['2014-04-01 00:00:00']] }))).rejects.toThrow(
      /window 0 of "cat\/f\.csv"/,
    );
  });

  it('reads a windows file from another path', async () => {
    const dir = await tinyCorpus('timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2\n');
    const other = join(dir, 'other.json');
    await writeFile(other, JSON.stringify({ 'cat/f.csv': [['2014-04-01 00:05:00.000000', '2014-04-01 00:05:00.000000']] }));
    const [s] = await loadNabCorpus(dir, other);
    expect(s!.windows).toEqual([[Date.UTC(2014, 3, 1, 0, 5), Date.UTC(2014, 3, 1, 0, 5)]]);
  });
});

describe('writeNabResults', () => {
  it('writes NAB results files with timestamp,value,anomaly_score,label', async () => {
    const corpus = await loadNabCorpus(NAB_DIR);
    const jumps = corpus.find((s) => s.name === 'artificialWithAnomaly/art_daily_jumpsup.csv')!;
    const scores = Float64Array.from(jumps.values, (_, i) => (i % 10) / 10);
    const out = await scratchDir();
    const [path] = await writeNabResults(out, 'rcf', [{ ...jumps, scores }]);
    expect(path).toBe(join(out, 'rcf', 'artificialWithAnomaly', 'rcf_art_daily_jumpsup.csv'));

    const lines = (await readFile(path!, 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe('timestamp,value,anomaly_score,label');
    expect(lines).toHaveLength(1 + jumps.timestamps.length);
    const source = (await readFile(join(NAB_DIR, 'data', jumps.name), 'utf8')).split('\n');
    // same timestamps as the data file, e.g. row 2 (third row): score 0.2
    expect(lines[3]!.split(',')[0]).toBe(source[3]!.split(',')[0]);
    expect(lines[3]!.split(',')[2]).toBe('0.2');
    // one window, 2014-04-10 16:15 .. 2014-04-12 01:45, over 5-minute rows: 33h30m / 5m + 1 = 403 rows,
    // the first being row 9 days * 288 + 16h15m / 5m = 2592 + 195 = 2787
    const labelled = lines.slice(1).map((line) => line.endsWith(',1'));
    expect(labelled.filter(Boolean)).toHaveLength(403);
    expect(labelled.indexOf(true)).toBe(2787);
    expect(lines[1 + 2787]!.startsWith('2014-04-10 16:15:00,')).toBe(true);
  });

  it('rejects names that are not NAB relative paths', async () => {
    const out = await scratchDir();
    const s = { name: 'nyc_taxi.csv', timestamps: [0], values: [1], scores: [0], windows: [] };
    await expect(writeNabResults(out, 'rcf', [s])).rejects.toThrow(/not a NAB relative path/);
    await expect(writeNabResults(out, '../x', [])).rejects.toThrow(/detector name/);
  });
});
