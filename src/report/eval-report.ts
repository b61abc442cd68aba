/**
 * `eval --report FILE.html`: one self-contained page per evaluation. Per series: the values
 * with the labelled windows shaded, the standard profile's detections marked as true or
 * false positives, and the grade trace (the row scores NAB thresholds) with the threshold;
 * then NAB's profile table and a per-category table.
 *
 * Fed by `EvalReportCollector.onSeries` (runEval's per-series hook) while the evaluation
 * runs; `render(result)` needs the finished result for the thresholds and counts.
 */
import { writeFile } from 'node:fs/promises';
import type { NabSeries } from '../eval/nab-corpus.js';
import { NAB_PROFILES, scoreSeriesAt } from '../eval/nab-score.js';
import type { EvalResult } from '../eval/run-eval.js';
import { downsampleIndices } from './downsample.js';
import { escapeHtml, renderPage } from './html.js';
import { EVAL_REPORT_SCRIPT } from './chart-script.js';

/** Rows drawn per series at most (plus every detection and window edge). */
export const EVAL_REPORT_POINTS = 4000;

interface Collected {
  series: NabSeries;
  grades: Float64Array;
}

export class EvalReportCollector {
  readonly #collected: Collected[] = [];
  readonly #budget: number;

  constructor(budget = EVAL_REPORT_POINTS) {
    this.#budget = budget;
  }

  /** One series scored: its rows and their [0, 1] NAB scores (kept by reference). */
  onSeries(series: NabSeries, grades: Float64Array): void {
    this.#collected.push({ series, grades });
  }

  render(result: EvalResult): string {
    const standard = result.profiles.standard;
    const profile = NAB_PROFILES.find((p) => p.name === 'standard')!;
    const series = this.#collected.map(({ series: s, grades }) => {
      const rows = s.timestamps.length;
      // Several fields (eval --fields): the first one is drawn.
      const d = s.dimensions;
      const values = d === 1 ? s.values : Float64Array.from({ length: rows }, (_, r) => s.values[r * d]!);
      const scored = { name: s.name, timestamps: s.timestamps, windows: s.windows, scores: grades };
      const detections = scoreSeriesAt(scored, standard.threshold, profile).detections;
      const inWindow = (row: number): boolean => s.windows.some(([a, b]) => s.timestamps[row]! >= a && s.timestamps[row]! <= b);
      const keep = new Set<number>(detections);
      const rowsOf = downsampleIndices(rows, [values, grades], this.#budget, keep);
      const at = new Map<number, number>();
      rowsOf.forEach((row, j) => at.set(row, j));
      const tpAt: number[] = [];
      const fpAt: number[] = [];
      for (const row of detections) (inWindow(row) ? tpAt : fpAt).push(at.get(row)!);
      return {
        name: s.name,
        rows,
        x: rowsOf.map((r) => s.timestamps[r]! / 1000),
        value: rowsOf.map((r) => finite(values[r]!)),
        grade: rowsOf.map((r) => finite(grades[r]!)),
        windows: s.windows.map(([a, b]) => [a / 1000, b / 1000]),
        tpAt,
        fpAt,
        threshold: standard.threshold,
      };
    });
    return renderPage({
      title: `rcf-stream eval report (${result.mode})`,
      body: evalBody(result, series.map((s) => ({ name: s.name, tp: s.tpAt.length, fp: s.fpAt.length, rows: s.rows, drawn: s.x.length }))),
      data: { series },
      script: EVAL_REPORT_SCRIPT,
    });
  }

  async write(path: string, result: EvalResult): Promise<void> {
    await writeFile(path, this.render(result));
  }
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function cell(v: string | number): string {
  return `<td>${escapeHtml(String(v))}</td>`;
}

function evalBody(r: EvalResult, charts: { name: string; tp: number; fp: number; rows: number; drawn: number }[]): string {
  const f = r.forest;
  const parts: string[] = [];
  parts.push(`<h1>rcf-stream eval: mode ${escapeHtml(r.mode)}</h1>`);
  parts.push(
    `<p class="meta">${r.files} series, ${r.records} records, ${r.seconds.toFixed(1)} s (${escapeHtml(r.engine)}); ` +
      `${f.numberOfTrees} trees, sample size ${f.sampleSize}, shingle ${f.shingleSize}, time decay ${f.timeDecay}, seed ${escapeHtml(f.randomSeed)}</p>`,
  );
  parts.push('<h2>NAB profiles</h2><table id="profiles"><tr><th>profile</th><th>score</th><th>threshold</th><th>TP</th><th>FP</th><th>FN</th></tr>');
  for (const p of Object.values(r.profiles)) {
    parts.push(`<tr>${cell(p.profile)}${cell(p.score.toFixed(1))}${cell(p.threshold.toFixed(4))}${cell(p.tp)}${cell(p.fp)}${cell(p.fn)}</tr>`);
  }
  parts.push('</table>');
  const categories = new Map<string, { files: number; windows: number; tp: number; fp: number; fn: number; raw: number }>();
  r.profiles.standard.perFile.forEach((file, i) => {
    const category = file.name.includes('/') ? file.name.slice(0, file.name.indexOf('/')) : '(none)';
    const c = categories.get(category) ?? { files: 0, windows: 0, tp: 0, fp: 0, fn: 0, raw: 0 };
    c.files++;
    c.windows += r.series[i]?.windows ?? 0;
    c.tp += file.tp;
    c.fp += file.fp;
    c.fn += file.fn;
    c.raw += file.raw;
    categories.set(category, c);
  });
  parts.push('<h2>Per category (standard profile)</h2><table id="categories"><tr><th>category</th><th>files</th><th>windows</th><th>TP</th><th>FP</th><th>FN</th><th>raw</th></tr>');
  for (const [name, c] of [...categories].sort(([a], [b]) => a.localeCompare(b))) {
    parts.push(`<tr>${cell(name)}${cell(c.files)}${cell(c.windows)}${cell(c.tp)}${cell(c.fp)}${cell(c.fn)}${cell(c.raw.toFixed(2))}</tr>`);
  }
  parts.push('</table>');
  parts.push(
    `<h2>Series</h2><p class="meta">Shaded: labelled windows. Markers: detections at the standard profile's threshold ` +
      `(${r.profiles.standard.threshold.toFixed(4)}), <span class="tp">true</span> or <span class="fp">false</span> positive. ` +
      'Orange: the grade trace (right axis). Long series are downsampled for display (min/max per bucket; every detection kept).</p>',
  );
  charts.forEach((c, i) => {
    parts.push(
      `<div class="series"><h3>${escapeHtml(c.name)}</h3><p class="meta">${c.rows} rows (${c.drawn} drawn), ` +
        `<span class="tp">${c.tp} TP</span>, <span class="fp">${c.fp} FP</span></p><div class="chart" data-series="${i}"></div></div>`,
    );
  });
  return parts.join('\n');
}
