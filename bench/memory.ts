/**
 * Memory measurements. Each runs in its own child Node process (started with --expose-gc), so
 * neither its allocations nor its heap disturb the timings or each other:
 *
 * - forest memory, WASM: growth of the kernel's linear memory while `count` forests are created
 *   and fed, divided by `count`, next to the mean `forest.memoryBytes`;
 * - forest memory, TS: growth of the JS heap (`heapUsed + arrayBuffers`, after `gc()`) while
 *   `count` forests are created and fed, divided by `count`, next to the mean `forest.memoryBytes`;
 * - the scale check: many small WASM forests alive at once, total WASM memory and process RSS,
 *   within a time budget (it reports how far it got when the budget runs out).
 *
 * The parent calls `measureForestMemory` / `runScaleCheck`; the child end is `main` below.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createForestSync, loadKernel, type EngineName, type Forest } from '../src/index.js';
import { CONFIGS, forestOptions, SCALE_CHECK } from './configs.js';
import { createStream, take, TempStream } from './streams.js';

export interface ForestMemory {
  configId: string;
  engine: EngineName;
  /** Forests created and kept alive. */
  count: number;
  /** Points fed to each with update(). */
  fillPoints: number;
  /** Mean forest.memoryBytes over the forests. */
  modelBytes: number;
  /** WASM: linear-memory growth / count. TS: (heapUsed + arrayBuffers) growth / count. */
  measuredBytes: number;
  /** What measuredBytes is. */
  measuredBy: 'wasm-linear-memory' | 'js-heap';
  /** Process RSS growth / count (informational: includes allocator and page effects). */
  rssBytes: number;
  seconds: number;
}

export interface ScaleProgress {
  forests: number;
  seconds: number;
  wasmMemoryBytes: number;
}

export interface ScaleResult {
  /** Forests asked for. */
  target: number;
  /** Forests actually created and fed (fewer than target when the time budget ran out). */
  forests: number;
  completed: boolean;
  budgetSeconds: number;
  numberOfTrees: number;
  sampleSize: number;
  dimensions: number;
  pointsEach: number;
  /** The kernel's whole linear memory with all forests alive. */
  wasmMemoryBytes: number;
  /** Sum of forest.memoryBytes. */
  modelBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  limitBytes: number;
  /** Completed, and RSS and WASM memory both below limitBytes; null when not completed. */
  underLimit: boolean | null;
  /** When not completed: WASM memory scaled linearly to the target (an estimate, not a measurement). */
  projectedWasmMemoryBytes?: number;
  /** Time and memory at every tenth of the target, to show how creation cost evolves. */
  progress: ScaleProgress[];
  seconds: number;
}

function collect(): void {
  if (typeof globalThis.gc !== 'function') throw new Error('memory measurements need node --expose-gc');
  globalThis.gc();
  globalThis.gc();
}

function heapBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Feeds points with update() alone: scores allocate nothing that lasts, and skipping them makes
 * filling 100 forests several times cheaper.
 */
function feed(forest: Forest, points: readonly Float64Array[]): void {
  for (let i = 0; i < points.length; i++) forest.update(points[i]!);
}

async function forestMemory(configId: string, engine: EngineName, count: number, fillPoints: number): Promise<ForestMemory> {
  const config = CONFIGS.find((c) => c.id === configId);
  if (!config) throw new Error(`unknown config ${configId}`);
  const b = config.dimensions;
  const data = take(createStream(config.stream), fillPoints);
  const points = Array.from({ length: fillPoints }, (_, i) => data.subarray(i * b, (i + 1) * b));
  // WASM: the kernel is instantiated (and its I/O buffer sized) before anything is measured.
  const kernel = engine === 'wasm' ? await loadKernel() : undefined;
  kernel?.io(b);
  const wasmBytes = (): number => kernel?.memoryBytes ?? 0;
  collect();
  const wasmBefore = wasmBytes();
  const heapBefore = heapBytes();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();

  const forests: Forest[] = [];
  for (let i = 0; i < count; i++) {
    const forest = createForestSync(forestOptions(config, engine, i));
    feed(forest, points);
    forests.push(forest);
  }

  const seconds = (performance.now() - t0) / 1000;
  collect();
  const measured = kernel ? wasmBytes() - wasmBefore : heapBytes() - heapBefore;
  const rss = process.memoryUsage().rss - rssBefore;
  const modelBytes = forests.reduce((sum, f) => sum + f.memoryBytes, 0) / count;
  return {
    configId,
    engine,
    count,
    fillPoints,
    modelBytes,
    measuredBytes: measured / count,
    measuredBy: engine === 'wasm' ? 'wasm-linear-memory' : 'js-heap',
    rssBytes: rss / count,
    seconds,
  };
}

async function scaleCheck(target: number, pointsEach: number, budgetSeconds: number): Promise<ScaleResult> {
  const { numberOfTrees, sampleSize, dimensions, limitBytes } = SCALE_CHECK;
  const kernel = await loadKernel();
  const stream = new TempStream();
  const block = new Float64Array(pointsEach);
  const out = new Float64Array(pointsEach);
  const alive: Forest[] = [];
  const progress: ScaleProgress[] = [];
  const step = Math.max(1, Math.round(target / 10));
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  while (alive.length < target && elapsed() < budgetSeconds) {
    const forest = createForestSync({ dimensions, numberOfTrees, sampleSize, randomSeed: alive.length + 1, engine: 'wasm' });
    forest.process(stream.fill(block), out);
    alive.push(forest);
    if (alive.length % step === 0) progress.push({ forests: alive.length, seconds: elapsed(), wasmMemoryBytes: kernel.memoryBytes });
  }
  const seconds = elapsed();
  const forests = alive.length;
  const completed = forests === target;
  if (!completed) progress.push({ forests, seconds, wasmMemoryBytes: kernel.memoryBytes });
  collect();
  const mem = process.memoryUsage();
  const wasmMemoryBytes = kernel.memoryBytes;
  const modelBytes = alive.reduce((sum, f) => sum + f.memoryBytes, 0);
  return {
    target,
    forests,
    completed,
    budgetSeconds,
    numberOfTrees,
    sampleSize,
    dimensions,
    pointsEach,
    wasmMemoryBytes,
    modelBytes,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    limitBytes,
    underLimit: completed ? mem.rss < limitBytes && wasmMemoryBytes < limitBytes : null,
    ...(completed || forests === 0 ? {} : { projectedWasmMemoryBytes: (wasmMemoryBytes / forests) * target }),
    progress,
    seconds,
  };
}

// ---- parent side ------------------------------------------------------------------------------

function runChild<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`memory child "${args.join(' ')}" exited with ${code ?? signal}`));
        return;
      }
      try {
        const lines = stdout.trim().split('\n');
        resolve(JSON.parse(lines[lines.length - 1]!) as T);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** Forest memory of one configuration and engine, measured in a child process. */
export function measureForestMemory(configId: string, engine: EngineName, count: number, fillPoints: number): Promise<ForestMemory> {
  return runChild<ForestMemory>(['forest', configId, engine, String(count), String(fillPoints)]);
}

/** The memory-scale check, in a child process; stops creating forests after budgetSeconds. */
export function runScaleCheck(forests: number, pointsEach: number, budgetSeconds: number): Promise<ScaleResult> {
  return runChild<ScaleResult>(['scale', String(forests), String(pointsEach), String(budgetSeconds)]);
}

// ---- child side -------------------------------------------------------------------------------

async function main(argv: string[]): Promise<void> {
  const [mode, ...rest] = argv;
  let result: ForestMemory | ScaleResult;
  if (mode === 'forest') {
    const [configId, engine, count, fill] = rest;
    if (engine !== 'wasm' && engine !== 'ts') throw new Error(`engine must be wasm or ts, got ${engine}`);
    result = await forestMemory(configId!, engine, Number(count), Number(fill));
  } else if (mode === 'scale') {
    result = await scaleCheck(Number(rest[0]), Number(rest[1]), Number(rest[2]));
  } else {
    throw new Error(`usage: memory.js forest <config> <engine> <count> <fillPoints> | scale <forests> <pointsEach> <budgetSeconds>`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
