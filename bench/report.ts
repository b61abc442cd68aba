/**
 * Reporting: the printed table, the AWS comparison, the memory-scale and snapshot sections, and
 * the JSON results file under bench/results/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { AWS_PUBLISHED, JAVA_SIDE_BY_SIDE } from './configs.js';
import type { ForestMemory, ScaleResult } from './memory.js';
import { MEASURES, type ConfigResult, type Measure, type RowResult, type SuiteSettings, type Throughput } from './suite.js';

export interface MachineInfo {
  host: string;
  os: string;
  cpuModel: string;
  cpuCount: number;
  totalMemoryBytes: number;
}

export interface GitInfo {
  commit: string | null;
  /** Uncommitted changes in the tree when the bench ran (others work in the same tree). */
  dirty: boolean | null;
}

export interface MemorySettings {
  wasmForests: number;
  tsForests: number;
  fillPoints: number;
}

/** What the pipeline hook (bench/pipeline.ts, benchPipeline()) reported, normalised. */
export interface PipelineRow {
  label: string;
  pointsPerSecond: number | null;
  spreadPct: number | null;
  /** One line: its name and every number it reported. */
  details: string;
  raw: unknown;
}

/** Figures from outside this run, kept apart from it: no ratio mixes them with this run's. */
export interface Reference {
  /** Java, WASM and TS measured together on JAVA_SIDE_BY_SIDE.date (points/s, score + update). */
  sideBySide?: { date: string; conditions: string; java: number; wasm: number; ts: number };
  /** Published figures (issue 4), never measured here. */
  published?: { java: number; rust: number };
}

export interface ConfigReport extends ConfigResult {
  memory: Partial<Record<string, ForestMemory>>;
  /** WASM / TS per measure, and for memory (model bytes). */
  ratios?: Record<Measure | 'modelBytes' | 'measuredBytes', number>;
  reference?: Reference;
}

export interface BenchReport {
  schema: 1;
  date: string;
  quick: boolean;
  filter: string | null;
  machine: MachineInfo;
  node: string;
  v8: string;
  git: GitInfo;
  /** os.loadavg() (1, 5, 15 min) when the run started and ended: others share this VM. */
  load: { start: number[]; end: number[] };
  /** First 16 hex digits of the SHA-256 of build/rcf.wasm: which kernel was measured. */
  kernelBinaryId: string;
  settings: { suite: SuiteSettings; memory: MemorySettings; scaleBudgetSeconds: number };
  configs: ConfigReport[];
  scale: ScaleResult | null;
  pipeline: PipelineRow | null;
  /** Wall time of the whole run, seconds. */
  seconds: number;
  /** The printed report, verbatim. */
  text: string;
}

// ---- facts about the run --------------------------------------------------------------------

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    host: os.hostname().split('.')[0] || 'host',
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
  };
}

export function gitInfo(cwd: string): GitInfo {
  const git = (...args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const commit = git('rev-parse', 'HEAD');
  // Untracked files count (a new source file changes what runs); the bench's own results do not.
  const status = commit === null ? null : git('status', '--porcelain', '--', '.', ':(exclude)bench/results');
  return { commit, dirty: status === null ? null : status.length > 0 };
}

/** Adds WASM/TS ratios and the AWS comparison to a configuration's results. */
export function completeConfig(result: ConfigResult, memory: Partial<Record<string, ForestMemory>>): ConfigReport {
  const report: ConfigReport = { ...result, memory };
  const wasm = result.rows.find((r) => r.engine === 'wasm');
  const ts = result.rows.find((r) => r.engine === 'ts');
  if (wasm && ts) {
    const ratios = {} as Record<Measure | 'modelBytes' | 'measuredBytes', number>;
    for (const m of MEASURES) ratios[m] = wasm.throughput[m].median / ts.throughput[m].median;
    ratios.modelBytes = wasm.modelBytes / ts.modelBytes;
    const wm = memory[wasm.key];
    const tm = memory[ts.key];
    ratios.measuredBytes = wm && tm ? wm.measuredBytes / tm.measuredBytes : Number.NaN;
    report.ratios = ratios;
  }
  const side = JAVA_SIDE_BY_SIDE.rows[result.config.id];
  const published = AWS_PUBLISHED[result.config.id];
  if (side || published) {
    report.reference = {
      ...(side ? { sideBySide: { date: JAVA_SIDE_BY_SIDE.date, conditions: JAVA_SIDE_BY_SIDE.conditions, ...side } } : {}),
      ...(published ? { published } : {}),
    };
  }
  return report;
}

// ---- text -------------------------------------------------------------------------------------

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ratio = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);
const mib = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

function kib(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '–';
  return bytes >= 10 * 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)}M` : `${Math.round(bytes / 1024).toLocaleString('en-US')}K`;
}

/** " (+n%)": measured bytes per forest over the same forests' model bytes. */
function overhead(m: ForestMemory | undefined): string {
  if (!m || !(m.modelBytes > 0)) return '';
  const pct = 100 * (m.measuredBytes / m.modelBytes - 1);
  return ` (${pct >= 0 ? '+' : ''}${pct.toFixed(0)}%)`;
}

function pad(cells: string[][], rightAligned: (col: number) => boolean): string[] {
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]?.length ?? 0)));
  return cells.map((row) =>
    row
      .map((cell, c) => (rightAligned(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join(' | ')
      .trimEnd(),
  );
}

function rule(line: string): string {
  return line.replace(/[^|]/g, '-').replace(/\|/g, '+');
}

/** Cells timed while this process got less than this share of a CPU are marked "*". */
const BUSY_SHARE = 0.8;

function busy(t: Throughput): string {
  return t.cpuShare < BUSY_SHARE ? '*' : '';
}

function throughputCells(row: RowResult): string[] {
  const t = row.throughput;
  return [
    `${int(t.scoreUpdate.median)} ±${t.scoreUpdate.spreadPct.toFixed(1)}%${busy(t.scoreUpdate)}`,
    ...(['process', 'score', 'update', 'attribution'] as const).map((m) => `${int(t[m].median)}${busy(t[m])}`),
  ];
}

/** The one results table: a row per configuration and engine, then the WASM/TS ratios. */
export function formatTable(configs: ConfigReport[], pipeline: PipelineRow | null, memory: MemorySettings): string {
  const header = [
    'config',
    'engine',
    'score+update pts/s',
    'process() pts/s',
    'score only',
    'update only',
    'attribution/s',
    'memory/forest',
  ];
  const rows: string[][] = [header];
  const ratioRows = new Set<number>();
  for (const c of configs) {
    for (const r of c.rows) {
      const m = c.memory[r.key];
      rows.push([c.config.label, r.engine, ...throughputCells(r), `${kib(r.modelBytes)}${overhead(m)}`]);
    }
    if (c.ratios) {
      const q = c.ratios;
      ratioRows.add(rows.length);
      rows.push(['', 'WASM/TS', ...MEASURES.map((k) => ratio(q[k])), `${ratio(q.modelBytes)} (${ratio(q.measuredBytes)})`]);
    }
  }
  if (pipeline) {
    const spread = pipeline.spreadPct === null ? '' : ` ±${pipeline.spreadPct.toFixed(1)}%`;
    rows.push([pipeline.label, '', pipeline.pointsPerSecond === null ? '–' : `${int(pipeline.pointsPerSecond)}${spread}`, '', '', '', '', '']);
  }
  const lines = pad(rows, (c) => c >= 2);
  const out = [lines[0]!, rule(lines[0]!)];
  for (let i = 1; i < lines.length; i++) {
    out.push(lines[i]!);
    if (ratioRows.has(i) && i < lines.length - 1) out.push(rule(lines[0]!));
  }
  out.push(
    '',
    'Throughput: points (attributions) per second, median over tinybench iterations of one 1,000-point block each,',
    '± the median absolute deviation of the per-iteration rates. WASM/TS: ratio of the medians; memory: of model bytes (of measured bytes).',
    'memory/forest: forest.memoryBytes of the benchmarked forest (steady state); (+n%): what really came on top, measured in',
    `a child process with ${memory.wasmForests} (wasm) / ${memory.tsForests} (ts) forests fed ${int(memory.fillPoints)} points each: WASM linear-memory growth`,
    '(wasm rows) or JS heapUsed + arrayBuffers growth (ts rows) per forest, over those forests\' own mean forest.memoryBytes.',
  );
  const marked = configs.some((c) => c.rows.some((r) => MEASURES.some((m) => r.throughput[m].cpuShare < BUSY_SHARE)));
  if (marked) out.push(`*: timed while this process got less than ${BUSY_SHARE * 100}% of a CPU (others busy on the machine): pessimistic.`);
  if (pipeline?.details) out.push(`Pipeline row (bench/pipeline.ts, benchPipeline()): ${pipeline.details}`);
  return out.join('\n');
}

/**
 * The headline: WASM/TS per configuration, both engines measured in this run, one after the
 * other on the same machine.
 */
export function formatHeadline(configs: ConfigReport[]): string {
  const rows: string[][] = [['WASM/TS (this run)', 'score+update', 'process()', 'score only', 'update only', 'attribution']];
  for (const c of configs) {
    if (!c.ratios) continue;
    rows.push([c.config.label, ...MEASURES.map((m) => ratio(c.ratios![m]))]);
  }
  if (rows.length === 1) return '';
  const lines = pad(rows, (c) => c >= 1);
  return [lines[0]!, rule(lines[0]!), ...lines.slice(1)].join('\n');
}

/** Figures from elsewhere: AWS's Java measured side by side on another day, and published figures. */
export function formatReference(configs: ConfigReport[]): string {
  const out: string[] = [];
  const side: string[][] = [['config', 'Java 4.3.0', 'WASM', 'TS', 'WASM/Java', 'TS/Java', 'WASM/TS']];
  for (const c of configs) {
    const r = c.reference?.sideBySide;
    if (r) side.push([c.config.label, int(r.java), int(r.wasm), int(r.ts), ratio(r.wasm / r.java), ratio(r.ts / r.java), ratio(r.wasm / r.ts)]);
  }
  if (side.length > 1) {
    const lines = pad(side, (col) => col >= 1);
    out.push(
      `AWS Java side by side, measured on ${JAVA_SIDE_BY_SIDE.date}, NOT in this run (${JAVA_SIDE_BY_SIDE.conditions}):`,
      'score + update, medians of interleaved rounds Java -> WASM -> TS, 20,000 warm-up + 100,000 timed points,',
      'equal score sums; the ratios are of that session\'s figures (bench/NOTES.md, "Java side by side").',
      lines[0]!,
      rule(lines[0]!),
      ...lines.slice(1),
    );
  }
  const pub: string[][] = [['config', 'Java 4.3.0', 'Rust']];
  for (const c of configs) {
    const r = c.reference?.published;
    if (r) pub.push([c.config.label, int(r.java), int(r.rust)]);
  }
  if (pub.length > 1) {
    const lines = pad(pub, (col) => col >= 1);
    if (out.length > 0) out.push('');
    out.push('AWS published figures, score + update points/s (issue 4; another machine and day, not measured here):', lines[0]!, rule(lines[0]!), ...lines.slice(1));
  }
  return out.join('\n');
}

export function formatScale(s: ScaleResult): string {
  const head = `Memory scale: ${int(s.target)} WASM forests of ${s.numberOfTrees} trees x ${s.sampleSize} samples (${s.dimensions}-D), ${s.pointsEach} points each, alive at once (child process)`;
  const lines = [head];
  if (s.completed) {
    const verdict = s.underLimit ? 'PASS' : 'FAIL';
    lines.push(
      `  ${verdict}: WASM memory ${mib(s.wasmMemoryBytes)}, process RSS ${mib(s.rssBytes)} (limit ${mib(s.limitBytes)});` +
        ` model bytes ${mib(s.modelBytes)}; built and fed in ${s.seconds.toFixed(1)} s`,
    );
  } else {
    const projected = s.projectedWasmMemoryBytes === undefined ? '' : `; WASM memory projected to ${int(s.target)} forests: ${mib(s.projectedWasmMemoryBytes)} (estimate)`;
    lines.push(
      `  INCOMPLETE: only ${int(s.forests)} of ${int(s.target)} forests within the ${s.budgetSeconds} s budget;` +
        ` at that point WASM memory ${mib(s.wasmMemoryBytes)}, process RSS ${mib(s.rssBytes)}${projected}`,
    );
  }
  if (s.progress.length > 1) {
    let prev = { forests: 0, seconds: 0 };
    const steps = s.progress.map((p) => {
      const rate = (p.forests - prev.forests) / Math.max(1e-9, p.seconds - prev.seconds);
      prev = p;
      return `${int(p.forests)}: ${p.seconds.toFixed(1)} s (${int(rate)}/s)`;
    });
    lines.push(`  forests created: ${steps.join(', ')}`);
  }
  return lines.join('\n');
}

export function formatSnapshots(configs: ConfigReport[]): string {
  const rows: string[][] = [['config', 'engine', 'snapshot bytes', 'snapshot / model', 'snapshot() ms']];
  for (const c of configs) {
    for (const r of c.rows) {
      if (!r.snapshot) continue;
      rows.push([c.config.label, r.engine, int(r.snapshot.bytes), ratio(r.snapshot.bytes / r.modelBytes), r.snapshot.ms.toFixed(1)]);
    }
  }
  if (rows.length === 1) return '';
  const lines = pad(rows, (c) => c >= 2);
  return ['Snapshot size (one snapshot() of the benchmarked forest):', lines[0]!, rule(lines[0]!), ...lines.slice(1)].join('\n');
}

export function formatHeader(r: Pick<BenchReport, 'date' | 'machine' | 'node' | 'git' | 'kernelBinaryId' | 'quick' | 'filter' | 'load'>): string {
  const commit = r.git.commit === null ? 'no git' : `${r.git.commit.slice(0, 12)}${r.git.dirty ? ' (+ uncommitted changes)' : ''}`;
  const mode = [r.quick ? 'quick' : 'full', r.filter === null ? '' : `filter "${r.filter}"`].filter(Boolean).join(', ');
  return [
    `rcf-stream bench, ${r.date} (${mode})`,
    `${r.machine.cpuModel} x ${r.machine.cpuCount}, ${mib(r.machine.totalMemoryBytes)}, ${r.machine.os}; Node ${r.node}`,
    `commit ${commit}; kernel build/rcf.wasm ${r.kernelBinaryId}`,
    `load average at start ${r.load.start.map((x) => x.toFixed(2)).join(' ')}${r.load.end.length > 0 ? `, at end ${r.load.end.map((x) => x.toFixed(2)).join(' ')}` : ''}`,
  ].join('\n');
}

// ---- JSON -------------------------------------------------------------------------------------

/**
 * Writes the report to bench/results/<YYYY-MM-DD>-<host>[-n].json; quick or filtered runs get
 * a `.tmp.json` suffix (git-ignored), since they are not comparable to full runs.
 */
export function writeResults(report: BenchReport, resultsDir: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const day = report.date.slice(0, 10);
  const suffix = report.quick || report.filter !== null ? '.tmp.json' : '.json';
  const base = `${day}-${report.machine.host}`;
  let path = join(resultsDir, `${base}${suffix}`);
  for (let n = 2; existsSync(path); n++) path = join(resultsDir, `${base}-${n}${suffix}`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
