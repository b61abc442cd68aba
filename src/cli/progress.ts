/**
 * A one-line progress display on a terminal's stderr: bytes read (of the total when
 * known), records per second and anomalies so far. Redrawn at most every 100 ms; other
 * stderr output (bad-record reports, notifications) clears it first via clear().
 */
import type { Writable } from 'node:stream';
import { formatCount } from './args.js';

const REDRAW_MS = 100;
const BAR_WIDTH = 20;

export interface ProgressState {
  bytes: number;
  /** Total bytes of the input, when known (a file). */
  totalBytes: number | undefined;
  records: number;
  anomalies: number;
  /** Seconds since the start. */
  seconds: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/** The progress line, without terminal control characters. */
export function formatProgress(s: ProgressState): string {
  const rate = s.seconds > 0 ? s.records / s.seconds : 0;
  const parts: string[] = [];
  if (s.totalBytes !== undefined && s.totalBytes > 0) {
    const fraction = Math.min(1, s.bytes / s.totalBytes);
    const filled = Math.round(fraction * BAR_WIDTH);
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}%`);
    parts.push(`${formatBytes(s.bytes)}/${formatBytes(s.totalBytes)}`);
  } else {
    parts.push(formatBytes(s.bytes));
  }
  parts.push(`${formatCount(rate)} records/s`);
  parts.push(`${formatCount(s.anomalies)} anomalies`);
  return parts.join('  ');
}

export class ProgressBar {
  #shown = false;
  #lastDraw = -Infinity;

  constructor(
    private readonly stream: Writable & { columns?: number },
    /** False: never draws (not a terminal, or --quiet). */
    readonly enabled: boolean,
  ) {}

  update(state: ProgressState, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    let line = formatProgress(state);
    const columns = this.stream.columns;
    if (columns !== undefined && columns > 1 && line.length >= columns) line = line.slice(0, columns - 1);
    this.stream.write(`\r\x1b[K${line}`);
    this.#shown = true;
  }

  /** Erases the line so other stderr output starts on a clean line. */
  clear(): void {
    if (!this.#shown) return;
    this.stream.write('\r\x1b[K');
    this.#shown = false;
  }
}
