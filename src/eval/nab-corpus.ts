/**
 * Reading and writing the Numenta Anomaly Benchmark (NAB) folder layout:
 * data `<dir>/data/<category>/<file>.csv` (`timestamp,value`), labels
 * `<dir>/labels/combined_windows.json` (`"category/file.csv": [[start, end], ...]`), and detector
 * results `<out>/<detector>/<category>/<detector>_<file>.csv`
 * (`timestamp,value,anomaly_score,label`, the columns NAB's detectors write before scoring).
 * NAB timestamps carry no zone; they are read and written as UTC. They are kept in file order
 * even where they repeat or step back (NAB's real files do, around clock changes): NAB scores rows.
 *
 * Beyond NAB's own `timestamp,value`, a data file may hold several value columns and a key
 * column (`timestamp,host,cpu,mem`): `fields` picks the values of each record (default
 * `value`), `keyField` the column whose value chooses a model. One file is still one labelled
 * series, whatever its keys.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { LabelledSeries, ScoredSeries } from './nab-score.js';

export interface NabSeries extends LabelledSeries {
  /** e.g. "realKnownCause" */
  readonly category: string;
  /** e.g. "nyc_taxi.csv" */
  readonly file: string;
  readonly timestamps: Float64Array;
  /** Record i's values are values[i·dimensions .. (i+1)·dimensions). */
  readonly values: Float64Array;
  /** Values per record (the number of fields). */
  readonly dimensions: number;
  /** Model key per record, when the corpus is read with a keyField. */
  readonly keys?: string[];
  readonly windows: Array<[number, number]>;
}

/** Which columns of a data file make a record. */
export interface NabColumns {
  /** Value columns, in order. Default ['value']. */
  fields?: readonly string[];
  /** Column holding the model key. */
  keyField?: string;
}

/** What `writeNabResults` needs: a scored, labelled series with its values. */
export interface NabResultSeries extends ScoredSeries {
  readonly values: ArrayLike<number>;
  /** Values per row (default 1); the result file's `value` column is each row's first. */
  readonly dimensions?: number;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;

/** Parses NAB's "2014-02-19 10:50:00" or "2014-02-19 10:50:00.000000" as UTC ms; NaN if invalid. */
export function parseNabTimestamp(text: string): number {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return Number.NaN;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number, number, number, number, number, number,
  ];
  const ms = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const d = new Date(t);
  // Date.UTC rolls 2014-02-30 over into March; NAB data never has such dates, so reject them.
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return Number.NaN;
  if (hour > 23 || minute > 59 || second > 59) return Number.NaN;
  return t;
}

/** Formats UTC ms the way NAB's data files spell timestamps. */
export function formatNabTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2014-04-01T00:00:00.000Z
  const whole = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  return ms % 1000 === 0 ? whole : `${whole}.${iso.slice(20, 23)}`;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function parseSeriesCsv(
  text: string,
  path: string,
  columns: NabColumns,
): { timestamps: Float64Array; values: Float64Array; keys: string[] | undefined } {
  const lines = text.split(/\r?\n/);
  const header = (lines[0]?.trim() ?? '').split(',').map((h) => h.trim());
  const fields = columns.fields ?? ['value'];
  const keyField = columns.keyField;
  if (header[0] !== 'timestamp' || new Set(header).size !== header.length) {
    throw new Error(`${path}:1: expected header "timestamp,<columns>" with distinct names, found "${lines[0]?.trim() ?? ''}"`);
  }
  const valueColumns = fields.map((f) => {
    const c = header.indexOf(f);
    if (c < 1) throw new Error(`${path}:1: no column "${f}" in header "${header.join(',')}"`);
    return c;
  });
  const keyColumn = keyField === undefined ? -1 : header.indexOf(keyField);
  if (keyField !== undefined && keyColumn < 1) throw new Error(`${path}:1: no key column "${keyField}" in header "${header.join(',')}"`);
  const timestamps: number[] = [];
  const values: number[] = [];
  const keys: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const lineNo = i + 1;
    const cells = line.split(',');
    if (cells.length !== header.length) throw new Error(`${path}:${lineNo}: expected ${header.length} fields, found ${cells.length}`);
    const t = parseNabTimestamp(cells[0]!);
    if (Number.isNaN(t)) throw new Error(`${path}:${lineNo}: bad timestamp "${cells[0]}"`);
    for (const c of valueColumns) {
      const v = cells[c]!.trim() === '' ? Number.NaN : Number(cells[c]);
      if (!Number.isFinite(v)) throw new Error(`${path}:${lineNo}: bad value "${cells[c]}"`);
      values.push(v);
    }
    if (keyColumn > 0) keys.push(cells[keyColumn]!.trim());
    timestamps.push(t);
  }
  if (timestamps.length === 0) throw new Error(`${path}: no data rows`);
  return { timestamps: Float64Array.from(timestamps), values: Float64Array.from(values), keys: keyColumn > 0 ? keys : undefined };
}

function parseWindows(text: string, path: string): Map<string, Array<[number, number]>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${path}: expected an object mapping "category/file.csv" to windows`);
  }
  const windows = new Map<string, Array<[number, number]>>();
  for (const [name, list] of Object.entries(json)) {
    if (!Array.isArray(list)) throw new Error(`${path}: windows of "${name}" are not a list`);
    windows.set(
      name,
      list.map((pair: unknown, w) => {
        const bad = (): never => {
          throw new Error(`${path}: window ${w} of "${name}" is not a [start, end] pair of NAB timestamps`);
        };
        if (!Array.isArray(pair) || pair.length !== 2) return bad();
        const [a, b] = pair as unknown[];
        const start = typeof a === 'string' ? parseNabTimestamp(a) : Number.NaN;
        const end = typeof b === 'string' ? parseNabTimestamp(b) : Number.NaN;
        if (Number.isNaN(start) || Number.isNaN(end) || start > end) return bad();
        return [start, end] as [number, number];
      }),
    );
  }
  return windows;
}

/**
 * Loads every `<dir>/data/<category>/*.csv` with its windows, sorted by NAB relative path.
 * The windows file may label more files than the folder holds (e.g. the full corpus's labels
 * with a subset of its data), but every data file must be labelled.
 */
export async function loadNabCorpus(dir: string, windowsFile?: string, columns: NabColumns = {}): Promise<NabSeries[]> {
  if (columns.fields !== undefined && columns.fields.length === 0) throw new Error('fields must name at least one column');
  const dataDir = join(dir, 'data');
  if (!(await isDirectory(dataDir))) throw new Error(`NAB corpus folder not found: ${dataDir}`);
  const labelsPath = windowsFile ?? join(dir, 'labels', 'combined_windows.json');
  let labelsText: string;
  try {
    labelsText = await readFile(labelsPath, 'utf8');
  } catch {
    throw new Error(`NAB windows file not found: ${labelsPath}`);
  }
  const windows = parseWindows(labelsText, labelsPath);

  const categories = (await readdir(dataDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const series: NabSeries[] = [];
  for (const category of categories) {
    const files = (await readdir(join(dataDir, category), { withFileTypes: true }))
      .filter((entry) => entry.isFile() && entry.name.endsWith('.csv'))
      .map((entry) => entry.name)
      .sort();
    for (const file of files) {
      const name = `${category}/${file}`;
      const path = join(dataDir, category, file);
      const labelled = windows.get(name);
      if (!labelled) throw new Error(`${labelsPath}: no windows for data file "${name}"`);
      const { timestamps, values, keys } = parseSeriesCsv(await readFile(path, 'utf8'), path, columns);
      const dimensions = columns.fields?.length ?? 1;
      const windowList = labelled.map(([s, e]) => [s, e] as [number, number]);
      series.push({ name, category, file, timestamps, values, dimensions, ...(keys ? { keys } : {}), windows: windowList });
    }
  }
  if (series.length === 0) throw new Error(`no NAB data files under ${dataDir}`);
  return series;
}

function isInWindows(t: number, windows: ReadonlyArray<readonly [number, number]>): boolean {
  for (const [start, end] of windows) if (t >= start && t <= end) return true;
  return false;
}

/**
 * Writes NAB results files, `<outDir>/<detectorName>/<category>/<detectorName>_<file>.csv` with
 * columns `timestamp,value,anomaly_score,label` (label 1 inside a window). Returns their paths.
 */
export async function writeNabResults(
  outDir: string,
  detectorName: string,
  series: readonly NabResultSeries[],
): Promise<string[]> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(detectorName)) {
    // NAB splits result file names on "<detector>_", and the name becomes a folder.
    throw new Error(`detector name "${detectorName}" must be letters, digits, ".", "_" or "-"`);
  }
  const written: string[] = [];
  for (const s of series) {
    const parts = s.name.split('/');
    if (parts.length !== 2 || !parts[0] || !parts[1] || parts.includes('..')) {
      throw new Error(`series name "${s.name}" is not a NAB relative path "category/file.csv"`);
    }
    const [category, file] = parts as [string, string];
    const rows = s.timestamps.length;
    const d = s.dimensions ?? 1;
    if (s.values.length !== rows * d || s.scores.length !== rows) {
      throw new Error(`${s.name}: timestamps, values and scores differ in length`);
    }
    const lines = ['timestamp,value,anomaly_score,label'];
    for (let i = 0; i < rows; i++) {
      const t = s.timestamps[i]!;
      lines.push(`${formatNabTimestamp(t)},${s.values[i * d]},${s.scores[i]},${isInWindows(t, s.windows) ? 1 : 0}`);
    }
    const folder = join(outDir, detectorName, category);
    await mkdir(folder, { recursive: true });
    const path = join(folder, `${detectorName}_${file}`);
    await writeFile(path, `${lines.join('\n')}\n`, 'utf8');
    written.push(path);
  }
  return written;
}
