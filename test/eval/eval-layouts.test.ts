/**
 * eval beyond NAB's own layout and single run: multi-field and keyed files (one file = one
 * series), per-category scores, leave-one-category-out cross-validation, and seeds.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNabTimestamp, loadNabCorpus } from '../../src/eval/nab-corpus.js';
import { EVAL_FOREST_DEFAULTS, forestScores, runEval } from '../../src/eval/run-eval.js';
import { keySeed } from '../../src/detect/detector.js';
import { createForestSync } from '../../src/index.js';
import { crossValidateCategories } from '../../src/eval/cross-validate.js';
import { parseSeeds, runEvalCommand } from '../../src/cli/eval-command.js';
import type { CliIo } from '../../src/cli/args.js';

const START = Date.UTC(2021, 5, 1);
const STEP = 5 * 60_000;
const ROWS = 3000;
const at = (row: number): string => formatNabTimestamp(START + row * STEP);

function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

let dir: string;

/**
 * Category alpha: two files of `timestamp,host,cpu,mem` with two hosts interleaved, host "b"
 * spiking in cpu at its record 1200 (file row 2401). Category beta: one `timestamp,value`-free
 * file of the same layout with no spike and no window.
 */
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eval-layouts-'));
  await mkdir(join(dir, 'data', 'alpha'), { recursive: true });
  await mkdir(join(dir, 'data', 'beta'), { recursive: true });
  await mkdir(join(dir, 'labels'), { recursive: true });
  const file = (seed: number, spike: boolean): string => {
    const r = lcg(seed);
    const lines = ['timestamp,host,cpu,mem'];
    for (let i = 0; i < ROWS; i++) {
      const host = i % 2 === 0 ? 'a' : 'b';
      const cpu = (host === 'a' ? 20 : 60) + r() + (spike && i === 2401 ? 30 : 0);
      lines.push(`${at(Math.floor(i / 2))},${host},${cpu},${40 + r()}`);
    }
    return `${lines.join('\n')}\n`;
  };
  await writeFile(join(dir, 'data', 'alpha', 'one.csv'), file(1, true));
  await writeFile(join(dir, 'data', 'alpha', 'two.csv'), file(2, true));
  await writeFile(join(dir, 'data', 'beta', 'quiet.csv'), file(3, false));
  const window = [[at(1150), at(1250)]];
  await writeFile(join(dir, 'labels', 'combined_windows.json'), JSON.stringify({ 'alpha/one.csv': window, 'alpha/two.csv': window, 'beta/quiet.csv': [] }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const columns = { fields: ['cpu', 'mem'], keyField: 'host' };

describe('eval on multi-field, keyed files', () => {
  it('loads the chosen columns and keys', async () => {
    const [one] = await loadNabCorpus(dir, undefined, columns);
    expect(one!.dimensions).toBe(2);
    expect(one!.values).toHaveLength(2 * ROWS);
    expect(one!.keys!.slice(0, 3)).toEqual(['a', 'b', 'a']);
    await expect(loadNabCorpus(dir)).rejects.toThrow(/no column "value"/);
    await expect(loadNabCorpus(dir, undefined, { fields: ['cpu'], keyField: 'rack' })).rejects.toThrow(/no key column "rack"/);
  });

  it('catches the spike of one host with one model per host', async () => {
    const r = await runEval({ dataDir: dir, columns });
    expect(r.fields).toEqual(['cpu', 'mem']);
    expect(r.keyField).toBe('host');
    const [one, two, quiet] = r.profiles.standard.perFile;
    expect(one).toMatchObject({ tp: 1, fn: 0, fp: 0 });
    expect(two).toMatchObject({ tp: 1, fn: 0, fp: 0 });
    expect(quiet).toMatchObject({ tp: 0, fn: 0, fp: 0 });
    expect(one!.detections).toEqual([at(1200)]);
  });

  it('scores each key with its own model, seeded as KeyedDetector seeds it', async () => {
    const [one] = await loadNabCorpus(dir, undefined, columns);
    const forest = { ...EVAL_FOREST_DEFAULTS.quality, dimensions: 2 };
    const { raw } = await forestScores(one!, forest);
    // Host b's rows alone, through a forest with the key's seed.
    const rowsB = one!.keys!.flatMap((k, i) => (k === 'b' ? [i] : []));
    const valuesB = Float64Array.from(rowsB.flatMap((i) => [one!.values[2 * i]!, one!.values[2 * i + 1]!]));
    const alone = createForestSync({ ...forest, randomSeed: keySeed(0n, 'b') });
    const expected = alone.process(valuesB);
    alone.dispose();
    expect(rowsB.map((i) => raw[i])).toEqual(Array.from(expected));
  });

  it('reports each category at the corpus threshold, adding up to the totals', async () => {
    const r = await runEval({ dataDir: dir, columns });
    for (const p of Object.values(r.profiles)) {
      expect(p.perCategory.map((c) => c.category)).toEqual(['alpha', 'beta']);
      const [alpha, beta] = p.perCategory;
      expect(alpha).toMatchObject({ files: 2, windows: 2 });
      expect(beta).toMatchObject({ files: 1, windows: 0, score: null });
      expect(alpha!.tp + beta!.tp).toBe(p.tp);
      expect(alpha!.fp + beta!.fp).toBe(p.fp);
      expect(alpha!.fn + beta!.fn).toBe(p.fn);
      // beta has no windows and no false positives: alpha carries the whole score.
      expect(beta!.fp).toBe(0);
      expect(alpha!.score).toBeCloseTo(p.score, 10);
    }
  });
});

describe('leave-one-category-out cross-validation', () => {
  it('with a one-setting grid, equals the in-sample figure', async () => {
    const cv = await crossValidateCategories({ dataDir: dir, columns, grid: [{}] });
    expect(cv.folds.map((f) => f.category)).toEqual(['alpha', 'beta']);
    expect(cv.crossValidated).toEqual(cv.inSample.scores);
    expect(cv.defaults).toEqual(cv.inSample.scores);
    const direct = await runEval({ dataDir: dir, columns });
    expect(cv.defaults.standard).toBe(direct.profiles.standard.score);
  });

  it('picks, per fold, the setting that does best on the other categories', async () => {
    // A warm-up longer than the files grades every row 0: every fold that can see alpha's
    // windows avoids it.
    const cv = await crossValidateCategories({ dataDir: dir, columns, grid: [{ warmup: 5000 }, {}] });
    expect(cv.inSample.grader.warmup).toBe(100);
    const beta = cv.folds.find((f) => f.category === 'beta')!;
    expect(beta.grader.warmup).toBe(100);
    // Without alpha only beta (no windows) is left to choose on: both settings are silent
    // there, a tie, so the first setting stays, and alpha's windows are missed.
    const alpha = cv.folds.find((f) => f.category === 'alpha')!;
    expect(alpha.grader.warmup).toBe(5000);
    expect(cv.crossValidated.standard).toBe(0);
    expect(cv.inSample.scores.standard).toBeGreaterThan(50);
  });
});

describe('eval --seeds and --cv', () => {
  function capture(): { io: CliIo; out: () => string; err: () => string } {
    const out: string[] = [];
    const err: string[] = [];
    const sink = (into: string[]): Writable => new Writable({ write: (c: Buffer, _e, cb) => (into.push(c.toString()), cb()) });
    return { io: { stdin: Readable.from([]), stdout: sink(out), stderr: sink(err) }, out: () => out.join(''), err: () => err.join('') };
  }

  it('parses seed lists and ranges', () => {
    expect(parseSeeds('0-4')).toEqual([0, 1, 2, 3, 4]);
    expect(parseSeeds('3,1')).toEqual([3, 1]);
    for (const bad of ['4-0', 'a', '-1', '1,,2', '0-5000']) expect(() => parseSeeds(bad), bad).toThrow(/--seeds/);
  });

  it('prints each seed, their mean and minimum', async () => {
    const c = capture();
    expect(await runEvalCommand(['--data', dir, '--fields', 'cpu,mem', '--key-field', 'host', '--seeds', '0-1', '--quiet'], c.io)).toBe(0);
    const scores = await Promise.all([0, 1].map((seed) => runEval({ dataDir: dir, columns, forest: { randomSeed: seed } })));
    const std = scores.map((r) => r.profiles.standard.score);
    const text = c.out();
    expect(text).toContain(`seed 0    ${std[0]!.toFixed(1)} /`);
    expect(text).toContain(`seed 1    ${std[1]!.toFixed(1)} /`);
    expect(text).toContain(`mean      ${((std[0]! + std[1]!) / 2).toFixed(1)} /`);
    expect(text).toContain(`min       ${Math.min(...std).toFixed(1)} /`);
  });

  it('prints the cross-validated figure beside the in-sample one', async () => {
    const c = capture();
    expect(await runEvalCommand(['--data', dir, '--fields', 'cpu,mem', '--key-field', 'host', '--cv', 'categories', '--quiet'], c.io)).toBe(0);
    expect(c.out()).toMatch(/best on all categories +\d+\.\d \/ /);
    expect(c.out()).toMatch(/cross-validated +\d+\.\d \/ /);
    expect(c.out()).toMatch(/without alpha/);
    const bad = capture();
    expect(await runEvalCommand(['--data', dir, '--cv', 'files'], bad.io)).toBe(2);
    expect(bad.err()).toMatch(/--cv must be "categories"/);
    expect(await runEvalCommand(['--data', dir, '--cv', 'categories', '--mode', 'raw'], bad.io)).toBe(2);
    expect(await runEvalCommand(['--data', dir, '--seed', '1', '--seeds', '0-1'], bad.io)).toBe(2);
  });
});
