/// <reference lib="dom" />
/**
 * The HTML reports in headless Chromium, opened as local files with every request refused:
 * `eval --report` draws one chart per series with its labelled windows shaded and its
 * detections marked (as many true and false positives as the evaluation counted), and a
 * file name made of markup stays text; `detect --plot` draws the chosen key, downsampled,
 * with every anomaly detect reported. Writes docs/images/report.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { runEvalCommand } from '../../src/cli/eval-command.js';
import { runDetectCommand } from '../../src/cli/detect-command.js';
import type { EvalResult } from '../../src/eval/run-eval.js';
import { sharedDir } from '../support/vectors.js';
import { chromiumUnavailableReason, launchChromium, watchPage, type LaunchedBrowser, type Page } from '../support/browser.js';

const skip = chromiumUnavailableReason();
if (skip !== undefined) console.warn(skip);

const NAB = join(sharedDir(), 'data', 'nab');
const EVIL_FILE = '<img src=x onerror="window.__xss=1">.csv';
const PICKED = ['artificialWithAnomaly/art_daily_jumpsup.csv', 'realKnownCause/nyc_taxi.csv', 'realKnownCause/machine_temperature_system_failure.csv'];

let dir: string;
let browser: LaunchedBrowser;

function io(): { io: { stdin: PassThrough; stdout: PassThrough; stderr: PassThrough }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdin: new PassThrough(), stdout, stderr }, out: () => out, err: () => err };
}

/** Opens a local file with the network refused; returns the URLs it tried to fetch. */
async function open(page: Page, path: string): Promise<string[]> {
  const requested: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    requested.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(path).href);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 20_000 });
  return requested;
}

beforeAll(async () => {
  if (skip !== undefined) return;
  dir = mkdtempSync(join(tmpdir(), 'rcf-report-'));
  // A NAB-layout subset: three real series and a copy of nyc_taxi under a file name made of markup.
  const labels = JSON.parse(readFileSync(join(NAB, 'labels', 'combined_windows.json'), 'utf8')) as Record<string, unknown>;
  const windows: Record<string, unknown> = {};
  for (const name of PICKED) {
    mkdirSync(join(dir, 'nab', 'data', name.split('/')[0]!), { recursive: true });
    copyFileSync(join(NAB, 'data', name), join(dir, 'nab', 'data', name));
    windows[name] = labels[name];
  }
  copyFileSync(join(NAB, 'data', 'realKnownCause/nyc_taxi.csv'), join(dir, 'nab', 'data', 'realKnownCause', EVIL_FILE));
  windows[`realKnownCause/${EVIL_FILE}`] = labels['realKnownCause/nyc_taxi.csv'];
  mkdirSync(join(dir, 'nab', 'labels'));
  writeFileSync(join(dir, 'nab', 'labels', 'combined_windows.json'), JSON.stringify(windows));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip !== undefined)('HTML reports in Chromium', () => {
  it('eval --report: one chart per series, windows shaded, detections as counted, offline', async () => {
    const report = join(dir, 'eval.html');
    const run = io();
    expect(await runEvalCommand(['--data', join(dir, 'nab'), '--report', report, '--json', '--quiet'], run.io)).toBe(0);
    const result = JSON.parse(run.out()) as EvalResult;
    expect(result.files).toBe(4);

    const page = await browser.context.newPage();
    const watched = watchPage(page);
    const requested = await open(page, report);
    expect(requested).toEqual([]);
    expect(await page.locator('.uplot').count()).toBe(4);
    expect(await page.locator('h3').allTextContents()).toEqual(result.series.map((s) => s.name));
    expect(await page.locator('h3').allTextContents()).toContain(`realKnownCause/${EVIL_FILE}`);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);

    // Per chart: markers as the evaluation counted them, and the window area painted.
    const charts = await page.evaluate(() => {
      type U = { data: (number | null)[][]; valToPos(v: number, s: string, c: boolean): number; bbox: { top: number; height: number; left: number; width: number }; ctx: CanvasRenderingContext2D };
      const data = JSON.parse(document.getElementById('report-data')!.textContent!) as { series: { windows: number[][] }[] };
      return (window as unknown as { __charts: U[] }).__charts.map((u, i) => {
        const count = (s: number): number => u.data[s]!.filter((v) => v !== null).length;
        const w = data.series[i]!.windows[0];
        let inside: number[] | undefined;
        let before: number[] | undefined;
        if (w !== undefined) {
          const y = Math.round(u.bbox.top + 2);
          inside = [...u.ctx.getImageData(Math.round(u.valToPos((w[0]! + w[1]!) / 2, 'x', true)), y, 1, 1).data];
          before = [...u.ctx.getImageData(Math.round(u.valToPos(w[0]!, 'x', true)) - 6, y, 1, 1).data];
        }
        return { tp: count(4), fp: count(5), windows: data.series[i]!.windows.length, inside, before };
      });
    });
    const standard = result.profiles.standard.perFile;
    expect(charts.map((c) => [c.tp, c.fp])).toEqual(standard.map((f) => [f.tp, f.fp]));
    expect(charts.reduce((n, c) => n + c.tp, 0)).toBeGreaterThan(0);
    for (const c of charts) {
      expect(c.windows).toBeGreaterThan(0);
      // The shade: translucent yellow painted inside the window, nothing just before it.
      const [r, g, b, a] = c.inside!;
      expect(r).toBeGreaterThan(200);
      expect(g).toBeGreaterThan(150);
      expect(b).toBeLessThan(60);
      expect(a).toBeGreaterThan(0);
      expect(c.before![3]).toBe(0);
    }
    expect(await page.locator('#categories tr').count()).toBe(3);
    mkdirSync('docs/images', { recursive: true });
    const shown = page.locator('.series').filter({ hasText: 'machine_temperature' });
    await shown.screenshot({ path: 'docs/images/report.png' });
    expect(watched.errors).toEqual([]);
    expect(watched.dialogs).toEqual([]);
    await page.close();
  });

  it('detect --plot: per key, downsampled, every anomaly marked, markup keys as text', async () => {
    const evilKey = '</script><script>window.__xss=3</script>';
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) {
      const key = i % 3 === 0 ? evilKey : 'big';
      const spike = i % 2003 === 1000;
      lines.push(JSON.stringify({ k: key, value: spike ? 300 : 30 + Math.sin(i / 11) }));
    }
    const input = join(dir, 'in.ndjson');
    writeFileSync(input, `${lines.join('\n')}\n`);
    const plot = join(dir, 'plot.html');
    const run = io();
    expect(await runDetectCommand(['--key-field', 'k', '--plot', plot, '--quiet', input], run.io)).toBe(0);
    const anomaliesOf = new Map<string, number>();
    for (const line of run.out().trim().split('\n')) {
      const r = JSON.parse(line) as { k: string; anomaly: boolean };
      if (r.anomaly) anomaliesOf.set(r.k, (anomaliesOf.get(r.k) ?? 0) + 1);
    }
    expect(anomaliesOf.get('big')).toBeGreaterThan(0);

    const page = await browser.context.newPage();
    const watched = watchPage(page);
    expect(await open(page, plot)).toEqual([]);
    expect(await page.locator('#key option').allTextContents()).toEqual([evilKey, 'big']);
    const shown = async (): Promise<{ points: number; markers: number }> =>
      page.evaluate(() => {
        const u = (window as unknown as { __charts: { data: (number | null)[][] }[] }).__charts[0]!;
        return { points: u.data[0]!.length, markers: u.data[u.data.length - 1]!.filter((v) => v !== null).length };
      });
    await page.selectOption('#key', { label: 'big' });
    await page.waitForFunction(() => document.body.dataset.key === '1');
    const big = await shown();
    expect(big.points).toBeLessThan(20_000);
    expect(big.points).toBeGreaterThan(500);
    expect(big.markers).toBe(anomaliesOf.get('big'));
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('script').count()).toBe(3);
    expect(watched.errors).toEqual([]);
    await page.close();
  });
});
