/**
 * `npm run bench [-- --quick] [-- --filter <substring>]`: the benchmark entry point.
 *
 * Order of work: the throughput suite (tinybench, in this process), the pipeline hook if present,
 * then the memory-scale check and the memory measurements in child processes (two at a time:
 * nothing is being timed any more). Prints one report and writes bench/results/*.json.
 * See bench/README.md.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernel, type EngineName } from '../src/index.js';
import { CONFIGS, ENGINES, rowKey, SCALE_CHECK, type BenchConfig } from './configs.js';
import { measureForestMemory, runScaleCheck, type ForestMemory, type ScaleResult } from './memory.js';
import {
  completeConfig,
  formatHeader,
  formatHeadline,
  formatReference,
  formatScale,
  formatSnapshots,
  formatTable,
  gitInfo,
  machineInfo,
  writeResults,
  type BenchReport,
  type MemorySettings,
  type PipelineRow,
} from './report.js';
import { FULL_SETTINGS, QUICK_SETTINGS, runConfig, type ConfigResult } from './suite.js';
import { benchQuality, formatQuality, type QualityBenchResult } from './quality.js';

const FULL_MEMORY: MemorySettings = { wasmForests: 100, tsForests: 20, fillPoints: 1000 };
const QUICK_MEMORY: MemorySettings = { wasmForests: 20, tsForests: 5, fillPoints: 500 };
/** Wall-time budget of the memory-scale check, seconds. */
const FULL_SCALE_BUDGET = 90;
const QUICK_SCALE_BUDGET = 12;
/** Memory child processes side by side (the VM has 2 cores; nothing is timed meanwhile). */
const MEMORY_CONCURRENCY = 2;

const USAGE = `usage: npm run bench [-- --quick] [-- --filter <substring>]

  --quick               short tinybench budgets, fewer memory forests (about a minute)
  --filter <substring>  only rows whose key or label contains it (case-insensitive); keys are
                        <config>/<engine> (${CONFIGS.map((c) => c.id).join(', ')}; wasm, ts),
                        scale/wasm (memory-scale check), pipeline and quality
`;

class UsageError extends Error {}

interface Args {
  quick: boolean;
  filter: string | null;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, filter: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') args.quick = true;
    else if (a === '--filter') {
      const value = argv[++i];
      if (value === undefined || value === '') throw new UsageError('--filter needs a value');
      args.filter = value;
    } else if (a.startsWith('--filter=')) args.filter = a.slice('--filter='.length);
    else if (a === '--help' || a === '-h') throw new UsageError('');
    else throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
  }
  return args;
}


function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('package.json not found above the bench script');
}

const log = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

async function pool<T>(jobs: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const results = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  return results;
}

/**
 * The pipeline hook: bench/pipeline.ts (another engineer's) exports
 * `benchPipeline(options?: { records?: number; runs?: number })`, resolving to an object with a
 * `name` and rates such as `recordsPerSecond`. Imported dynamically so this suite builds and runs
 * without it; its failure is reported, not fatal.
 */
async function runPipelineHook(quick: boolean): Promise<PipelineRow | null> {
  const url = new URL('./pipeline.js', import.meta.url);
  if (!existsSync(url)) return null;
  const specifier = url.href;
  const mod = (await import(specifier)) as { benchPipeline?: unknown };
  if (typeof mod.benchPipeline !== 'function') return null;
  const options = quick ? { quick, records: 20_000, runs: 1 } : { quick, records: 50_000, runs: 3 };
  log(`pipeline: benchPipeline(${JSON.stringify(options)})`);
  try {
    const raw: unknown = await (mod.benchPipeline as (o: typeof options) => unknown)(options);
    return pipelineRow(raw);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`pipeline: benchPipeline() failed: ${message}`);
    return { label: 'pipeline', pointsPerSecond: null, spreadPct: null, details: `failed: ${message}`, raw: { error: message } };
  }
}

function formatNumber(v: number): string {
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : String(Number(v.toPrecision(3)));
}

/** Normalises what benchPipeline() returned: a rate, or an object with a name and rates. */
function pipelineRow(raw: unknown): PipelineRow {
  if (typeof raw === 'number') return { label: 'pipeline', pointsPerSecond: raw, spreadPct: null, details: '', raw };
  const o = (raw !== null && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const name = typeof o.label === 'string' ? o.label : typeof o.name === 'string' ? o.name : '';
  const numbers = Object.entries(o)
    .filter(([, v]) => num(v) !== null)
    .map(([k, v]) => `${k} ${formatNumber(v as number)}`);
  return {
    label: 'pipeline',
    pointsPerSecond: num(o.pointsPerSecond) ?? num(o.recordsPerSecond) ?? num(o.throughput),
    spreadPct: num(o.spreadPct),
    details: [name, numbers.join(', ')].filter(Boolean).join(': '),
    raw,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const root = packageRoot();
  const suite = args.quick ? QUICK_SETTINGS : FULL_SETTINGS;
  const memorySettings = args.quick ? QUICK_MEMORY : FULL_MEMORY;
  const scaleBudget = args.quick ? QUICK_SCALE_BUDGET : FULL_SCALE_BUDGET;
  const needle = args.filter?.toLowerCase() ?? null;
  const selected = (key: string, label = ''): boolean =>
    needle === null || key.toLowerCase().includes(needle) || label.toLowerCase().includes(needle);
  if (typeof globalThis.gc !== 'function') log('warning: run node with --expose-gc (npm run bench does) for a collected heap before each task');

  const kernel = await loadKernel();
  const facts = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    node: process.versions.node,
    v8: process.versions.v8,
    git: gitInfo(root),
    kernelBinaryId: kernel.binaryId,
    quick: args.quick,
    filter: args.filter,
    load: { start: os.loadavg(), end: [] as number[] },
  };
  log(formatHeader(facts).replace(/\n/g, '\n[bench] '));
  if (facts.load.start[0]! > 0.5 * facts.machine.cpuCount) {
    log(`warning: the machine is busy (load ${facts.load.start[0]!.toFixed(2)} on ${facts.machine.cpuCount} CPUs); figures will be noisy`);
  }

  // 1. Throughput, in this process.
  const plan: { config: BenchConfig; engines: EngineName[] }[] = CONFIGS.map((config) => ({
    config,
    engines: ENGINES.filter((e) => selected(rowKey(config, e), config.label)),
  })).filter((p) => p.engines.length > 0);
  const results: ConfigResult[] = [];
  for (const { config, engines } of plan) {
    const r = runConfig(config, engines, suite, log);
    if (r.enginesAgree === false) log(`WARNING ${config.id}: wasm and ts warm-up scores differ; the engines are not bit-identical`);
    results.push(r);
  }

  // 2. The pipeline hook, while the machine is still quiet.
  const pipeline = selected('pipeline') ? await runPipelineHook(args.quick) : null;
  // 2b. `detect --threshold auto` against `--threshold 3` (bench/quality.ts).
  const quality: QualityBenchResult | null = selected('quality') ? await benchQuality({ quick: args.quick }) : null;

  // 3. Memory, in child processes, two at a time: the scale check (the longest) first.
  const measured: { scale: ScaleResult | null } = { scale: null };
  const memoryByKey = new Map<string, ForestMemory>();
  const jobs: (() => Promise<void>)[] = [];
  if (selected('scale/wasm', 'memory scale')) {
    jobs.push(async () => {
      log(`scale: ${SCALE_CHECK.forests} forests, budget ${scaleBudget} s`);
      measured.scale = await runScaleCheck(SCALE_CHECK.forests, SCALE_CHECK.pointsEach, scaleBudget);
    });
  }
  for (const { config, engines } of plan) {
    for (const engine of engines) {
      jobs.push(async () => {
        const count = engine === 'wasm' ? memorySettings.wasmForests : memorySettings.tsForests;
        log(`memory: ${rowKey(config, engine)}, ${count} forests x ${memorySettings.fillPoints} points`);
        memoryByKey.set(rowKey(config, engine), await measureForestMemory(config.id, engine, count, memorySettings.fillPoints));
      });
    }
  }
  await pool(jobs, MEMORY_CONCURRENCY);
  const { scale } = measured;

  // 4. Report.
  facts.load.end = os.loadavg();
  const configs = results.map((r) =>
    completeConfig(r, Object.fromEntries(r.rows.map((row) => [row.key, memoryByKey.get(row.key)]))),
  );
  const sections = [
    formatHeader(facts),
    formatHeadline(configs),
    configs.length > 0 || pipeline ? formatTable(configs, pipeline, memorySettings) : '',
    formatReference(configs),
    scale ? formatScale(scale) : '',
    formatSnapshots(configs),
    quality ? formatQuality(quality) : '',
  ].filter((s) => s.length > 0);
  const text = sections.join('\n\n');
  process.stdout.write(`\n${text}\n`);

  const report: BenchReport & { quality: QualityBenchResult | null } = {
    schema: 1,
    ...facts,
    settings: { suite, memory: memorySettings, scaleBudgetSeconds: scaleBudget },
    configs,
    scale,
    pipeline,
    quality,
    seconds: (performance.now() - started) / 1000,
    text,
  };
  const path = writeResults(report, join(root, 'bench', 'results'));
  log(`results written to ${path} (${report.seconds.toFixed(0)} s)`);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    if (error.message) process.stderr.write(`${error.message}\n`);
    process.stderr.write(USAGE);
    process.exit(error.message ? 2 : 0);
  }
  console.error(error);
  process.exit(1);
});
