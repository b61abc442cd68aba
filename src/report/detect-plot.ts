/**
 * `detect --plot FILE.html`: a self-contained page with, per key (or for the one model), the
 * values of every field, the score, the threshold and the anomalies, a selector choosing
 * the key. Memory is bounded whatever the input: each key is a BucketSeries (min/max per
 * bucket, every anomaly kept), and at most `maxKeys` keys are plotted (the first seen; the
 * rest are counted and named as left out on the page).
 *
 * Fed by `add(batch, results)` with each scored batch, in order (the existing per-batch
 * results of detect; no per-record objects are created for records that are not kept).
 */
import { writeFile } from 'node:fs/promises';
import { BucketSeries } from './bucket-series.js';
import { escapeHtml, renderPage } from './html.js';
import { DETECT_PLOT_SCRIPT } from './chart-script.js';

/** What add() reads from a scored batch (DetectionBatch plus its results). */
export interface PlotBatch {
  count: number;
  values: ArrayLike<number>;
  keys: readonly string[];
  dimensions: number;
}
export interface PlotResults {
  score: ArrayLike<number>;
  threshold: ArrayLike<number>;
  anomaly: ArrayLike<number>;
}

export interface DetectPlotOptions {
  /** Names of the value fields, in order. */
  fields: readonly string[];
  keyed: boolean;
  /** Keys plotted at most. Default 200. */
  maxKeys?: number;
  /** Buckets per key. Default 2000 (one key) or 500 (keyed). */
  buckets?: number;
  /** Shown in the page's heading (e.g. the input file). */
  title?: string;
}

const MAX_FIELDS_DRAWN = 4;

export class DetectPlotCollector {
  readonly #options: DetectPlotOptions;
  readonly #maxKeys: number;
  readonly #buckets: number;
  readonly #series = new Map<string, BucketSeries>();
  #keysLeftOut = new Set<string>();
  #keysLeftOutCount = 0;
  #records = 0;

  constructor(options: DetectPlotOptions) {
    this.#options = options;
    this.#maxKeys = options.maxKeys ?? 200;
    this.#buckets = options.buckets ?? (options.keyed ? 500 : 2000);
  }

  add(batch: PlotBatch, results: PlotResults): void {
    const b = batch.dimensions;
    const keyed = this.#options.keyed;
    let key = '';
    let series = this.#series.get('');
    for (let i = 0; i < batch.count; i++) {
      if (keyed) {
        if (batch.keys[i] !== key || series === undefined) {
          key = batch.keys[i]!;
          series = this.#seriesOf(key);
        }
      } else if (series === undefined) series = this.#seriesOf('');
      this.#records++;
      series?.add(batch.values, i * b, b, results.score[i]!, results.threshold[i]!, results.anomaly[i] === 1);
    }
  }

  #seriesOf(key: string): BucketSeries | undefined {
    let s = this.#series.get(key);
    if (s === undefined) {
      if (this.#series.size >= this.#maxKeys) {
        // Remember a few names for the page; count them all.
        if (!this.#keysLeftOut.has(key)) {
          if (this.#keysLeftOut.size < 1000) this.#keysLeftOut.add(key);
          else this.#keysLeftOutCount++;
        }
        return undefined;
      }
      s = new BucketSeries(this.#buckets);
      this.#series.set(key, s);
    }
    return s;
  }

  /** Keys not plotted (over maxKeys). */
  get keysLeftOut(): number {
    return this.#keysLeftOut.size + this.#keysLeftOutCount;
  }

  render(): string {
    const fields = this.#options.fields.slice(0, MAX_FIELDS_DRAWN);
    const keys = [...this.#series].map(([key, s]) => {
      const points = s.points();
      const anomalyAt: number[] = [];
      points.forEach((p, j) => {
        if (p.anomaly) anomalyAt.push(j);
      });
      return {
        label: this.#options.keyed ? key : '(all records)',
        summary: `${s.count} records, ${s.anomalyCount} anomalies, ${points.length} points drawn (bucket width ${s.width})`,
        x: points.map((p) => p.x),
        values: fields.map((_, d) => points.map((p) => finite(p.values[d]!))),
        score: points.map((p) => finite(p.score)),
        threshold: points.map((p) => finite(p.threshold)),
        anomalyAt,
      };
    });
    const title = this.#options.title ?? 'rcf-stream detect';
    const leftOut = this.keysLeftOut;
    const body = [
      `<h1>${escapeHtml(title)}</h1>`,
      `<p class="meta">${this.#records} records plotted, ${keys.length} ${this.#options.keyed ? 'keys' : 'series'}; fields: ${escapeHtml(this.#options.fields.join(', '))}${
        this.#options.fields.length > MAX_FIELDS_DRAWN ? ` (first ${MAX_FIELDS_DRAWN} drawn)` : ''
      }</p>`,
      leftOut > 0 ? `<p class="note">${leftOut} more keys are not plotted (at most ${this.#maxKeys}).</p>` : '',
      `<label>${this.#options.keyed ? 'key' : 'series'} <select id="key"></select></label> <span id="key-summary" class="meta"></span>`,
      '<div class="chart" id="chart"></div>',
      '<p class="meta">Long inputs are downsampled for display: per bucket the lowest and highest value and the highest score; every anomaly is kept.</p>',
    ].join('\n');
    return renderPage({ title, body, data: { fields, keys }, script: DETECT_PLOT_SCRIPT });
  }

  async write(path: string): Promise<void> {
    await writeFile(path, this.render());
  }
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
