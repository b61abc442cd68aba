/**
 * Benchmark of the `detect` pipeline end to end: a generated NDJSON file (the reference
 * temperature stream) -> line reader -> parser -> detector (50 trees, 1-D, WASM) -> NDJSON
 * output (to /dev/null), measured in-process and as the real command in a subprocess.
 * The kernel's own `process()` rate on the same values is measured in the same run, so
 * the pipeline/kernel ratio is not skewed by the machine's load at the time.
 *
 *   node dist/bench/pipeline.js            (after `npm run build`)
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { TemperatureSeries, writeNdjson } from '../src/generate/temperature.js';
import { createForest } from '../src/index.js';
import { parseDetectArgs, runDetect } from '../src/cli/detect-command.js';

export interface PipelineBenchResult extends Partial<import('./pipeline-rows.js').KeyedWorkersRow>, Partial<import('./pipeline-rows.js').RunRow> {
  name: string;
  /** Median over runs of records / wall time of the in-process pipeline (setup included). */
  recordsPerSecond: number;
  /** Median rate of `forest.process()` on the same values (the WASM kernel alone). */
  kernelRecordsPerSecond: number;
  /** recordsPerSecond / kernelRecordsPerSecond. */
  ratio: number;
  /**
   * The kernel's rate in a fresh thread (new isolate, new WASM memory), as the command meets
   * it: a new forest's first few thousand records cost several times the steady rate (memory
   * first touched, trees built), which a warm process hides. Median over runs.
   */
  kernelColdRecordsPerSecond: number;
  /** recordsPerSecond / kernelColdRecordsPerSecond: the pipeline's own overhead. */
  ratioToColdKernel: number;
  /** Median rate of `node dist/src/cli/main.js detect FILE` as a subprocess (process start included), when built. */
  subprocessRecordsPerSecond: number | undefined;
  records: number;
  runs: number;
  /** Anomalies found by the pipeline (a sanity check that it scored). */
  anomalies: number;
  /** Where the detector ran: 'worker' when the compiled worker module was available. */
  detectorThread: 'worker' | 'inline';
  /**
   * CPU seconds (medians; Linux only, from /proc), which a busy shared machine distorts far
   * less than wall time: the kernel's process(), and the pipeline's main and busiest other
   * thread (the detector worker). With two free cores the pipeline runs at about the pace of
   * its busier thread, so `kernel / max(main, worker)` estimates the ratio on an idle machine.
   */
  cpu: { kernelSeconds: number; mainThreadSeconds: number; workerThreadSeconds: number; estimatedIdleRatio: number } | undefined;
}

export interface PipelineBenchOptions {
  records?: number;
  runs?: number;
}

/** CPU seconds used so far by each thread of this process (Linux), by thread id. */
function threadCpu(): Map<string, number> | undefined {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime, in clock ticks (100 per second on Linux).
      out.set(tid, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return out;
}

/** Per-thread CPU used while `work` runs; threads that end during it are sampled every 10 ms. */
async function cpuDuring(work: () => Promise<void>): Promise<Map<string, number> | undefined> {
  const before = threadCpu();
  if (before === undefined) {
    await work();
    return undefined;
  }
  const latest = new Map<string, number>();
  const sample = (): void => {
    for (const [tid, cpu] of threadCpu() ?? []) latest.set(tid, cpu);
  };
  const timer = setInterval(sample, 10);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  sample();
  const used = new Map<string, number>();
  for (const [tid, cpu] of latest) used.set(tid, cpu - (before.get(tid) ?? 0));
  return used;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The built command, whether this file runs from dist/bench or from bench/ via a TS loader. */
function builtMain(): string | undefined {
  for (const candidate of [join(here, '..', 'src', 'cli', 'main.js'), join(here, '..', 'dist', 'src', 'cli', 'main.js')]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Times `process()` of a new forest in a new worker thread (kernel compiled there too, as in the command). */
async function coldKernelSeconds(values: Float64Array): Promise<number> {
  const indexUrl = new URL('../src/index.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.indexUrl).then(async ({ createForest }) => {
      const forest = await createForest({ dimensions: 1, numberOfTrees: 50, engine: 'wasm' });
      const started = performance.now();
      forest.process(workerData.values);
      parentPort.postMessage((performance.now() - started) / 1000);
    });`;
  const worker = new Worker(code, { eval: true, workerData: { indexUrl, values } });
  try {
    const [seconds] = (await once(worker, 'message')) as [number];
    return seconds;
  } finally {
    await worker.terminate();
  }
}

async function runSubprocess(main: string, file: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [main, 'detect', file, '--quiet'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`detect subprocess exited with ${code}`);
  return (performance.now() - started) / 1000;
}

export async function benchPipeline(options: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const records = options.records ?? 100_000;
  const runs = options.runs ?? 3;
  const dir = await mkdtemp(join(tmpdir(), 'rcf-bench-pipeline-'));
  try {
    const file = join(dir, 'temperature.ndjson');
    const fileStream = createWriteStream(file);
    await writeNdjson(fileStream, { count: records, seed: 42 });
    fileStream.end();
    await once(fileStream, 'close');

    const values = new Float64Array(records);
    const series = new TemperatureSeries({ count: records, seed: 42 });
    for (let i = 0; series.advance(); i++) values[i] = series.value;

    const config = parseDetectArgs([file, '--quiet', '--trees', '50', '--engine', 'wasm'])!;
    const main = builtMain();
    const pipelineSeconds: number[] = [];
    const kernelSeconds: number[] = [];
    const kernelColdSeconds: number[] = [];
    const subprocessSeconds: number[] = [];
    const cpuKernel: number[] = [];
    const cpuMain: number[] = [];
    const cpuWorker: number[] = [];
    let anomalies = 0;
    let detectorThread: 'worker' | 'inline' = 'inline';
    const { ModelWorkerPool } = await import('../src/detect/model-workers.js');
    detectorThread = ModelWorkerPool.available ? 'worker' : 'inline';

    // Alternating the measurements spreads any change in machine load over all of them.
    for (let run = 0; run < runs; run++) {
      const forest = await createForest({ dimensions: 1, numberOfTrees: 50, engine: 'wasm' });
      const kernelCpu = await cpuDuring(async () => {
        const started = performance.now();
        forest.process(values);
        kernelSeconds.push((performance.now() - started) / 1000);
      });
      forest.dispose();
      kernelColdSeconds.push(await coldKernelSeconds(values));

      const sinkStream = createWriteStream('/dev/null', { highWaterMark: 1024 * 1024 });
      const stderr = new PassThrough();
      stderr.resume();
      let result: Awaited<ReturnType<typeof runDetect>> | undefined;
      const pipelineCpu = await cpuDuring(async () => {
        const started = performance.now();
        result = await runDetect(config, { stdin: new PassThrough(), stdout: sinkStream, stderr });
        pipelineSeconds.push((performance.now() - started) / 1000);
      });
      sinkStream.end();
      if (kernelCpu !== undefined && pipelineCpu !== undefined) {
        const main = String(process.pid);
        cpuKernel.push(kernelCpu.get(main) ?? 0);
        cpuMain.push(pipelineCpu.get(main) ?? 0);
        cpuWorker.push(Math.max(0, ...[...pipelineCpu].filter(([tid]) => tid !== main).map(([, cpu]) => cpu)));
      }
      if (result === undefined) throw new Error('pipeline did not run');
      if (result.exitCode !== 0 || result.stats.records !== records) {
        throw new Error(`pipeline run failed: exit ${result.exitCode}, ${result.stats.records} of ${records} records`);
      }
      anomalies = result.stats.anomalies;

      if (main !== undefined) subprocessSeconds.push(await runSubprocess(main, file));
    }
    const recordsPerSecond = records / median(pipelineSeconds);
    const kernelRecordsPerSecond = records / median(kernelSeconds);
    const kernelColdRecordsPerSecond = records / median(kernelColdSeconds);
    const { benchKeyedWorkers, benchRun, benchRunWorkers } = await import('./pipeline-rows.js');
    // 100 records per key in a full run: worker start-up and the models' warm-up do not decide the ratio.
    const keyed = await benchKeyedWorkers({ records: Math.min(2 * records, 100_000), runs: Math.max(1, Math.min(runs, 3)) });
    const run = await benchRun({ records: Math.min(records, 20_000) });
    const runWorkers = await benchRunWorkers({ records: Math.min(records, 10_000), runs: Math.max(1, Math.min(runs, 2)) });
    return {
      ...keyed,
      ...run,
      ...runWorkers,
      name: 'pipeline: detect NDJSON -> NDJSON, 50 trees, 1-D, wasm',
      recordsPerSecond,
      kernelRecordsPerSecond,
      ratio: recordsPerSecond / kernelRecordsPerSecond,
      kernelColdRecordsPerSecond,
      ratioToColdKernel: recordsPerSecond / kernelColdRecordsPerSecond,
      subprocessRecordsPerSecond: subprocessSeconds.length > 0 ? records / median(subprocessSeconds) : undefined,
      records,
      runs,
      anomalies,
      detectorThread,
      cpu:
        cpuKernel.length === 0
          ? undefined
          : {
              kernelSeconds: median(cpuKernel),
              mainThreadSeconds: median(cpuMain),
              workerThreadSeconds: median(cpuWorker),
              estimatedIdleRatio: median(cpuKernel) / Math.max(median(cpuMain), median(cpuWorker)),
            },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const result = await benchPipeline();
  console.log(JSON.stringify(result, null, 2));
}
