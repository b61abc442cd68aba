/**
 * What the live page shows, held in bounded memory: a ring of the latest points of the
 * whole stream, a ring per key (at most `maxKeys` keys, the least recently updated dropped
 * first, its ring reused), and the latest anomalies with their per-field attribution.
 * Fed by `scored` (the pipeline observer's batchScored); read by the HTTP server as JSON.
 *
 * A point is (t, value, score, threshold, anomaly): t the scoring time in seconds (the
 * records of one chunk spread evenly since the previous chunk, over at most a second, so
 * that x stays increasing), value the first field's value.
 */
import { explain, type Explanation } from '../detect/explanation.js';
import { downsampleIndices } from '../report/downsample.js';
import type { BatchScoredEvent, PipelineShape } from '../pipeline/contracts.js';

export interface LiveFeedOptions {
  /** Points kept for the whole stream. Default 5000. */
  streamPoints?: number;
  /** Points kept per key. Default 600. */
  keyPoints?: number;
  /** Keys kept. Default 500. */
  maxKeys?: number;
  /** Latest anomalies kept. Default 100. */
  anomalies?: number;
  now?: () => number;
}

/** Columns of points, as sent to the page (uPlot's data layout). */
export interface PointColumns {
  t: number[];
  value: (number | null)[];
  score: (number | null)[];
  threshold: (number | null)[];
  anomaly: number[];
}

export interface LiveAnomaly {
  /** Running number of the anomaly (0 for the first one seen). */
  seq: number;
  t: number;
  key: string | undefined;
  recordId: string | undefined;
  values: Record<string, number | null>;
  score: number;
  threshold: number;
  explanation: Explanation | undefined;
}

/** A fixed-size ring of points; `written` counts every point ever added. */
export class PointRing {
  readonly capacity: number;
  readonly #t: Float64Array;
  readonly #v: Float64Array;
  readonly #s: Float64Array;
  readonly #h: Float64Array;
  readonly #a: Uint8Array;
  written = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#t = new Float64Array(capacity);
    this.#v = new Float64Array(capacity);
    this.#s = new Float64Array(capacity);
    this.#h = new Float64Array(capacity);
    this.#a = new Uint8Array(capacity);
  }

  push(t: number, v: number, s: number, h: number, a: number): void {
    const i = this.written % this.capacity;
    this.#t[i] = t;
    this.#v[i] = v;
    this.#s[i] = s;
    this.#h[i] = h;
    this.#a[i] = a;
    this.written++;
  }

  clear(): void {
    this.written = 0;
  }

  /** Points written after `since` (a `written` value) still in the ring, downsampled to `budget` keeping anomalies. */
  since(since: number, budget: number): PointColumns {
    const from = Math.max(since, this.written - this.capacity, 0);
    const n = this.written - from;
    const idx = (j: number): number => (from + j) % this.capacity;
    let rows: number[];
    if (n <= budget) rows = Array.from({ length: n }, (_, j) => j);
    else {
      const v = new Float64Array(n);
      const s = new Float64Array(n);
      const keep: number[] = [];
      for (let j = 0; j < n; j++) {
        v[j] = this.#v[idx(j)]!;
        s[j] = this.#s[idx(j)]!;
        if (this.#a[idx(j)] === 1) keep.push(j);
      }
      rows = downsampleIndices(n, [v, s], budget, keep);
    }
    const out: PointColumns = { t: [], value: [], score: [], threshold: [], anomaly: [] };
    for (const j of rows) {
      const i = idx(j);
      out.t.push(this.#t[i]!);
      out.value.push(finite(this.#v[i]!));
      out.score.push(finite(this.#s[i]!));
      out.threshold.push(finite(this.#h[i]!));
      out.anomaly.push(this.#a[i]!);
    }
    return out;
  }
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

export class LiveFeed {
  readonly stream: PointRing;
  readonly #keyPoints: number;
  readonly #maxKeys: number;
  readonly #maxAnomalies: number;
  readonly #now: () => number;
  /** Insertion order = least recently updated first. */
  readonly #keys = new Map<string, PointRing>();
  readonly #anomalies: LiveAnomaly[] = [];
  #anomaliesWritten = 0;
  #shape: PipelineShape = { fields: ['value'], keyed: false, shingleSize: 1 };
  #keysDropped = 0;
  #lastT = 0;

  constructor(options: LiveFeedOptions = {}) {
    this.stream = new PointRing(options.streamPoints ?? 5000);
    this.#keyPoints = options.keyPoints ?? 600;
    this.#maxKeys = options.maxKeys ?? 500;
    this.#maxAnomalies = options.anomalies ?? 100;
    this.#now = options.now ?? Date.now;
  }

  get shape(): PipelineShape {
    return this.#shape;
  }

  setShape(shape: PipelineShape): void {
    this.#shape = shape;
  }

  /** Keys dropped from the page so far (over maxKeys). */
  get keysDropped(): number {
    return this.#keysDropped;
  }

  /** Anomalies seen so far (also those no longer kept). */
  get anomaliesWritten(): number {
    return this.#anomaliesWritten;
  }

  scored(event: BatchScoredEvent): void {
    const c = event.batch;
    const b = c.dimensions;
    const keys = this.#shape.keyed ? c.keys : undefined;
    // A chunk's records arrived since the previous chunk: spread them over that time (at most
    // the last second) rather than stack them at one instant; x stays strictly increasing.
    const now = Math.max(this.#now() / 1000, this.#lastT + c.count * 1e-6);
    const start = Math.max(this.#lastT, now - 1);
    const step = (now - start) / Math.max(1, c.count);
    let t = start;
    let lastKey: string | undefined;
    let ring: PointRing | undefined;
    for (let i = 0; i < c.count; i++) {
      t += step;
      const v = c.values[i * b]!;
      const s = c.score[i]!;
      const h = c.threshold[i]!;
      const a = c.anomaly[i] === 1 ? 1 : 0;
      this.stream.push(t, v, s, h, a);
      const key = keys?.[i];
      if (key !== undefined) {
        if (key !== lastKey || ring === undefined) {
          ring = this.#use(key);
          lastKey = key;
        }
        ring.push(t, v, s, h, a);
      }
      if (a === 1) this.#anomaly(event, i, t, key);
    }
    this.#lastT = t;
  }

  #use(key: string): PointRing {
    let ring = this.#keys.get(key);
    if (ring !== undefined) {
      this.#keys.delete(key);
    } else if (this.#keys.size >= this.#maxKeys) {
      const [oldest, reused] = this.#keys.entries().next().value as [string, PointRing];
      this.#keys.delete(oldest);
      this.#keysDropped++;
      reused.clear();
      ring = reused;
    } else ring = new PointRing(this.#keyPoints);
    this.#keys.set(key, ring);
    return ring;
  }

  #anomaly(event: BatchScoredEvent, i: number, t: number, key: string | undefined): void {
    const c = event.batch;
    const fields = this.#shape.fields;
    const values: Record<string, number | null> = Object.create(null) as Record<string, number | null>;
    for (let d = 0; d < c.dimensions; d++) values[fields[d] ?? `field${d}`] = finite(c.values[i * c.dimensions + d]!);
    const length = c.dimensions * this.#shape.shingleSize;
    const explanation =
      c.high !== undefined && c.low !== undefined ? explain(fields.slice(0, c.dimensions), this.#shape.shingleSize, c.high, c.low, i * length) : undefined;
    this.#anomalies.push({ seq: this.#anomaliesWritten, t, key, recordId: event.recordId(i), values, score: c.score[i]!, threshold: c.threshold[i]!, explanation });
    if (this.#anomalies.length > this.#maxAnomalies) this.#anomalies.shift();
    this.#anomaliesWritten++;
  }

  /** The ring of a key ('' for the whole stream); undefined for an unknown key. */
  ring(key: string): PointRing | undefined {
    return key === '' ? this.stream : this.#keys.get(key);
  }

  /** Known keys, most recently updated first, at most `limit`. */
  keys(limit = this.#maxKeys): string[] {
    const out = [...this.#keys.keys()].reverse();
    return out.length > limit ? out.slice(0, limit) : out;
  }

  /** The latest anomalies (newest last); with a key, only that key's. */
  anomalies(key = ''): LiveAnomaly[] {
    return key === '' ? [...this.#anomalies] : this.#anomalies.filter((a) => a.key === key);
  }
}
