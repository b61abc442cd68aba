/**
 * The throughput suite: tinybench tasks over warmed forests of both engines.
 *
 * Every task iteration works on one block of `blockSize` fresh points taken from the
 * configuration's stream, continuing where the previous block stopped (the block is filled in
 * `beforeEach`, outside the timed call). Throughput is block size / iteration time; a task's
 * figure is the median over its iterations, its spread the median absolute deviation.
 */
import { Bench, type Task } from 'tinybench';
import { createForestSync, type EngineName, type Forest } from '../src/index.js';
import { forestOptions, rowKey, type BenchConfig } from './configs.js';
import { createStream, take, type PointStream } from './streams.js';

export const MEASURES = ['scoreUpdate', 'process', 'score', 'update', 'attribution'] as const;
export type Measure = (typeof MEASURES)[number];

export const MEASURE_LABELS: Readonly<Record<Measure, string>> = {
  scoreUpdate: 'score() + update() per point',
  process: 'process() on the block',
  score: 'score() alone',
  update: 'update() alone',
  attribution: 'attribution() alone',
};

export interface SuiteSettings {
  /** Points per task iteration. */
  blockSize: number;
  /** Points fed (with process()) before anything is timed. */
  warmPoints: number;
  /** tinybench: time budget per task (ms) and minimum iterations. */
  time: number;
  iterations: number;
  /** tinybench warm-up phase per task (on top of the forest warm-up). */
  warmupTime: number;
  warmupIterations: number;
}

export const FULL_SETTINGS: SuiteSettings = {
  blockSize: 1000,
  warmPoints: 5000,
  time: 1000,
  iterations: 10,
  warmupTime: 150,
  warmupIterations: 2,
};

export const QUICK_SETTINGS: SuiteSettings = {
  blockSize: 1000,
  warmPoints: 5000,
  time: 250,
  iterations: 5,
  warmupTime: 50,
  warmupIterations: 1,
};

/** Points per second over a task's iterations. */
export interface Throughput {
  median: number;
  /** Median absolute deviation of the per-iteration rates. */
  mad: number;
  /** mad / median, in percent: the "±" of the table. */
  spreadPct: number;
  mean: number;
  min: number;
  max: number;
  /** Relative margin of error of the mean (95%), in percent. */
  rmePct: number;
  iterations: number;
  /**
   * CPU time this process got / wall time, over the task's timed phase: well below 1 means the
   * shared machine was busy and the figure is pessimistic.
   */
  cpuShare: number;
}

export interface SnapshotSize {
  bytes: number;
  /** Time of the one snapshot() call measured. */
  ms: number;
}

export interface RowResult {
  configId: string;
  engine: EngineName;
  key: string;
  throughput: Record<Measure, Throughput>;
  /** forest.memoryBytes of the benchmarked forest at the end of its run. */
  modelBytes: number;
  /** Present when forests have a snapshot() method. */
  snapshot?: SnapshotSize;
  /** Points fed to the forest in total (warm-up, tinybench warm-up and measured blocks). */
  pointsFed: number;
}

export interface ConfigResult {
  config: BenchConfig;
  rows: RowResult[];
  /**
   * When both engines ran: whether their warm-up scores were bit-identical (same seed, same
   * data), a guard that the kernel being timed still computes the right thing.
   */
  enginesAgree?: boolean;
}

/** One engine's forest with its own stream cursor and preallocated block buffers. */
class Subject {
  readonly forest: Forest;
  readonly stream: PointStream;
  readonly block: Float64Array;
  /** views[i] is point i of the block: per-point calls allocate nothing. */
  readonly views: Float64Array[];
  readonly out: Float64Array;
  readonly warmScores: Float64Array;
  pointsFed = 0;
  /** Keeps results observable so no call can be optimised away. */
  sink = 0;

  constructor(
    readonly config: BenchConfig,
    readonly engine: EngineName,
    readonly settings: SuiteSettings,
  ) {
    this.forest = createForestSync(forestOptions(config, engine));
    this.stream = createStream(config.stream);
    const b = config.dimensions;
    const n = settings.blockSize;
    this.block = new Float64Array(n * b);
    this.views = Array.from({ length: n }, (_, i) => this.block.subarray(i * b, (i + 1) * b));
    this.out = new Float64Array(n);
    this.warmScores = this.forest.process(take(this.stream, settings.warmPoints));
    this.pointsFed = settings.warmPoints;
  }

  nextBlock(): void {
    this.stream.fill(this.block);
  }

  scoreUpdate(): void {
    const { forest, views } = this;
    let s = 0;
    for (let i = 0; i < views.length; i++) {
      const p = views[i]!;
      s += forest.score(p);
      forest.update(p);
    }
    this.sink += s;
    this.pointsFed += views.length;
  }

  process(): void {
    this.forest.process(this.block, this.out);
    this.sink += this.out[0]!;
    this.pointsFed += this.views.length;
  }

  score(): void {
    const { forest, views } = this;
    let s = 0;
    for (let i = 0; i < views.length; i++) s += forest.score(views[i]!);
    this.sink += s;
  }

  update(): void {
    const { forest, views } = this;
    for (let i = 0; i < views.length; i++) forest.update(views[i]!);
    this.pointsFed += views.length;
  }

  attribution(): void {
    const { forest, views } = this;
    let s = 0;
    for (let i = 0; i < views.length; i++) s += forest.attribution(views[i]!).high[0]!;
    this.sink += s;
  }

  snapshotSize(): SnapshotSize | undefined {
    const snapshot = (this.forest as unknown as { snapshot?: unknown }).snapshot;
    if (typeof snapshot !== 'function') return undefined;
    const t0 = performance.now();
    const value: unknown = snapshot.call(this.forest);
    const ms = performance.now() - t0;
    return { bytes: byteSize(value), ms };
  }
}

/** Size of a snapshot however it is represented: bytes, string (UTF-8) or JSON-able value. */
function byteSize(value: unknown): number {
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/** Measures the share of a CPU the process got during each task's timed phase. */
class CpuShare {
  private cpu = process.cpuUsage();
  private wall = 0;
  readonly byTask = new Map<string, number>();

  start(): void {
    this.cpu = process.cpuUsage();
    this.wall = performance.now();
  }

  stop(task: string): void {
    const used = process.cpuUsage(this.cpu);
    const wallMs = performance.now() - this.wall;
    this.byTask.set(task, wallMs > 0 ? (used.user + used.system) / 1000 / wallMs : 1);
  }
}

function throughputOf(task: Task, blockSize: number, cpuShare: number): Throughput {
  const r = task.result;
  if (r.state !== 'completed') {
    const why = r.state === 'errored' ? `: ${r.error.message}` : '';
    throw new Error(`benchmark task ${task.name} ${r.state}${why}`);
  }
  const t = r.throughput; // iterations per second, per iteration
  return {
    median: t.p50 * blockSize,
    mad: t.mad * blockSize,
    spreadPct: t.p50 > 0 ? (100 * t.mad) / t.p50 : 0,
    mean: t.mean * blockSize,
    min: t.min * blockSize,
    max: t.max * blockSize,
    rmePct: t.rme,
    iterations: t.samplesCount,
    cpuShare,
  };
}

function sameScores(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

const collectGarbage: () => void = typeof globalThis.gc === 'function' ? () => globalThis.gc!() : () => {};

/**
 * Runs the throughput tasks of one configuration for the given engines. Tasks run measure by
 * measure, engine after engine, so both engines of a measure are timed close together.
 */
export function runConfig(
  config: BenchConfig,
  engines: readonly EngineName[],
  settings: SuiteSettings,
  log: (message: string) => void = () => {},
): ConfigResult {
  log(`${config.id}: warming ${engines.join(' + ')} with ${settings.warmPoints} points`);
  const subjects = engines.map((engine) => new Subject(config, engine, settings));
  try {
    const bench = new Bench({
      time: settings.time,
      iterations: settings.iterations,
      warmupTime: settings.warmupTime,
      warmupIterations: settings.warmupIterations,
      throws: true,
      // Each task (and its warm-up phase) starts on a freshly collected heap.
      setup: collectGarbage,
    });
    const cpu = new CpuShare();
    for (const measure of MEASURES) {
      for (const s of subjects) {
        const name = `${rowKey(config, s.engine)}/${measure}`;
        bench.add(name, () => s[measure](), {
          beforeEach: () => s.nextBlock(),
          beforeAll: (mode) => (mode === 'run' ? cpu.start() : undefined),
          afterAll: (mode) => (mode === 'run' ? cpu.stop(name) : undefined),
        });
      }
    }
    log(`${config.id}: timing ${bench.tasks.length} tasks`);
    bench.runSync();

    const rows = subjects.map((s): RowResult => {
      const throughput = {} as Record<Measure, Throughput>;
      for (const measure of MEASURES) {
        const name = `${rowKey(config, s.engine)}/${measure}`;
        const task = bench.getTask(name);
        if (!task) throw new Error(`missing task ${name}`);
        throughput[measure] = throughputOf(task, settings.blockSize, cpu.byTask.get(name) ?? Number.NaN);
      }
      const snapshot = s.snapshotSize();
      return {
        configId: config.id,
        engine: s.engine,
        key: rowKey(config, s.engine),
        throughput,
        modelBytes: s.forest.memoryBytes,
        ...(snapshot ? { snapshot } : {}),
        pointsFed: s.pointsFed,
      };
    });
    const result: ConfigResult = { config, rows };
    if (subjects.length === 2) result.enginesAgree = sameScores(subjects[0]!.warmScores, subjects[1]!.warmScores);
    return result;
  } finally {
    for (const s of subjects) s.forest.dispose();
  }
}
