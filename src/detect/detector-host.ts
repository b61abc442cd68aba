/**
 * Where a pipeline's detector runs: inline (on the caller's thread) or in a worker thread,
 * behind one asynchronous interface, so the command line can parse and format batch N+1
 * while batch N is being scored. The worker holds its own RecordDetector; batches go in
 * as copies of their values (and keys), results come back as transferred typed arrays.
 * Replies arrive in submission order, because the worker handles messages one at a time.
 *
 * A later snapshot feature reaches the models through the inline host's `detector`, or by
 * adding a message to the worker protocol below (the worker owns the models).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ForestOptions } from '../forest/options.js';
import { DetectionBatch, Detector, KeyedDetector, type RecordDetector } from './detector.js';
import { graderFactory, type ThresholdStrategy } from './strategy.js';

export interface DetectorSpec {
  forest: ForestOptions;
  threshold: ThresholdStrategy;
  attribution: boolean;
  /** One model per key when set. */
  keyed: boolean;
  maxKeys?: number;
}

/** A batch's results: the columns of DetectionBatch the sinks read. */
export interface BatchResults {
  score: Float64Array;
  grade: Float64Array;
  threshold: Float64Array;
  anomaly: Uint8Array;
  high: Float64Array | undefined;
  low: Float64Array | undefined;
}

/**
 * The first `n` results of a scored batch, copied out of its reused arrays, with the buffers
 * to transfer back to the main thread (the worker hosts' reply).
 */
export function copyResults(batch: DetectionBatch, n: number): { results: BatchResults; transfer: ArrayBuffer[] } {
  const D = batch.attributionLength;
  const results: BatchResults = {
    score: batch.score.slice(0, n),
    grade: batch.grade.slice(0, n),
    threshold: batch.threshold.slice(0, n),
    anomaly: batch.anomaly.slice(0, n),
    high: batch.high?.slice(0, n * D),
    low: batch.low?.slice(0, n * D),
  };
  const transfer = [results.score.buffer, results.grade.buffer, results.threshold.buffer, results.anomaly.buffer] as ArrayBuffer[];
  if (results.high !== undefined && results.low !== undefined) transfer.push(results.high.buffer as ArrayBuffer, results.low.buffer as ArrayBuffer);
  return { results, transfer };
}

export interface DetectorHost {
  /** Scores the batch's records; the batch may be refilled once the promise settles. */
  submit(batch: DetectionBatch): Promise<BatchResults>;
  /** Models held and evicted, as of the last settled batch. */
  readonly size: number;
  readonly evictions: number;
  readonly kind: 'inline' | 'worker';
  close(): Promise<void>;
}

export async function createRecordDetector(spec: DetectorSpec): Promise<RecordDetector> {
  const grader = await graderFactory(spec.threshold);
  const options = { forest: spec.forest, grader, attribution: spec.attribution };
  return spec.keyed ? KeyedDetector.create({ ...options, maxKeys: spec.maxKeys }) : Detector.create(options);
}

/** Runs on the caller's thread. */
export class InlineDetectorHost implements DetectorHost {
  readonly kind = 'inline';

  constructor(readonly detector: RecordDetector) {}

  static async start(spec: DetectorSpec): Promise<InlineDetectorHost> {
    return new InlineDetectorHost(await createRecordDetector(spec));
  }

  get size(): number {
    return this.detector.size;
  }

  get evictions(): number {
    return this.detector.evictions;
  }

  submit(batch: DetectionBatch): Promise<BatchResults> {
    try {
      this.detector.run(batch);
      return Promise.resolve(batch);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  async close(): Promise<void> {
    this.detector.dispose();
  }
}

const WORKER_MARK = 'rcf-stream detector worker';

interface WorkerRequest {
  n: number;
  values: Float64Array;
  /** The batch's timestamps (NaN for none). */
  time: Float64Array;
  keys: string[] | undefined;
}

type WorkerReply =
  | { ready: true }
  | { results: BatchResults; size: number; evictions: number }
  | { error: string };

/** This module's compiled file, when it is one a worker can load (not TypeScript run from source). */
function workerFile(): string | undefined {
  const path = fileURLToPath(import.meta.url);
  return path.endsWith('.js') && existsSync(path) ? path : undefined;
}

/** Runs the detector on a worker thread. */
export class WorkerDetectorHost implements DetectorHost {
  readonly kind = 'worker';
  size = 0;
  evictions = 0;
  readonly #worker: Worker;
  readonly #keyed: boolean;
  readonly #pending: { resolve: (r: BatchResults) => void; reject: (e: Error) => void }[] = [];
  #failure: Error | undefined;

  private constructor(worker: Worker, keyed: boolean) {
    this.#worker = worker;
    this.#keyed = keyed;
  }

  /** Whether a worker can be started (the compiled module exists). */
  static get available(): boolean {
    return workerFile() !== undefined;
  }

  static async start(spec: DetectorSpec): Promise<WorkerDetectorHost> {
    const file = workerFile();
    if (file === undefined) throw new Error('the detector worker needs the compiled module (run from dist/)');
    const worker = new Worker(file, { workerData: { mark: WORKER_MARK, spec } });
    const host = new WorkerDetectorHost(worker, spec.keyed);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (reply: WorkerReply): void => {
        worker.off('error', onError);
        if ('error' in reply) {
          void worker.terminate();
          reject(new Error(reply.error));
        } else resolve();
      };
      const onError = (error: Error): void => {
        worker.off('message', onMessage);
        reject(error);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
    });
    worker.on('message', (reply: WorkerReply) => host.#settle(reply));
    worker.on('error', (error: Error) => host.#fail(error));
    worker.on('exit', (code) => host.#fail(new Error(`detector worker exited (code ${code})`)));
    return host;
  }

  submit(batch: DetectionBatch): Promise<BatchResults> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const n = batch.count;
    const request: WorkerRequest = {
      n,
      values: batch.values.slice(0, n * batch.dimensions),
      time: batch.time.slice(0, n),
      keys: this.#keyed ? batch.keys.slice(0, n) : undefined,
    };
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      // slice() made a fresh ArrayBuffer, so it can be moved rather than copied.
      this.#worker.postMessage(request, [request.values.buffer as ArrayBuffer, request.time.buffer as ArrayBuffer]);
    });
  }

  #settle(reply: WorkerReply): void {
    const waiter = this.#pending.shift();
    if (waiter === undefined) return;
    if ('error' in reply) waiter.reject(new Error(reply.error));
    else if ('results' in reply) {
      this.size = reply.size;
      this.evictions = reply.evictions;
      waiter.resolve(reply.results);
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#pending.splice(0)) waiter.reject(this.#failure);
  }

  async close(): Promise<void> {
    this.#failure ??= new Error('detector worker closed');
    this.#worker.removeAllListeners('exit');
    await this.#worker.terminate();
  }
}

/**
 * Keyed models on N worker threads: each key belongs to one worker (a hash of the key),
 * so each key's model sees its records in the stream's order and scores exactly as on
 * one thread. A batch is split by worker, scored in parallel, and its results put back
 * in the batch's order. Each worker keeps up to maxKeys models (its own LRU), so results
 * equal one thread's as long as no model is evicted.
 */
export class PartitionedDetectorHost implements DetectorHost {
  readonly kind = 'worker';
  readonly #hosts: WorkerDetectorHost[];
  readonly #dimensions: number;
  readonly #attributionLength: number;
  readonly #owner = new Map<string, number>();

  private constructor(hosts: WorkerDetectorHost[], spec: DetectorSpec) {
    this.#hosts = hosts;
    this.#dimensions = spec.forest.dimensions;
    this.#attributionLength = spec.attribution ? spec.forest.dimensions * (spec.forest.shingleSize ?? 1) : 0;
  }

  static async start(spec: DetectorSpec, workers: number): Promise<PartitionedDetectorHost> {
    if (!spec.keyed) throw new Error('several detector workers need keyed models (one model cannot be split)');
    const hosts: WorkerDetectorHost[] = [];
    try {
      for (let i = 0; i < workers; i++) hosts.push(await WorkerDetectorHost.start(spec));
    } catch (error) {
      await Promise.all(hosts.map((h) => h.close()));
      throw error;
    }
    return new PartitionedDetectorHost(hosts, spec);
  }

  get workers(): number {
    return this.#hosts.length;
  }

  get size(): number {
    return this.#hosts.reduce((n, h) => n + h.size, 0);
  }

  get evictions(): number {
    return this.#hosts.reduce((n, h) => n + h.evictions, 0);
  }

  /** The worker of `key`: 32-bit FNV-1a of its UTF-16 units, modulo the workers. */
  workerOf(key: string): number {
    let w = this.#owner.get(key);
    if (w !== undefined) return w;
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    w = (h >>> 0) % this.#hosts.length;
    if (this.#owner.size >= 1 << 16) this.#owner.clear();
    this.#owner.set(key, w);
    return w;
  }

  async submit(batch: DetectionBatch): Promise<BatchResults> {
    const n = batch.count;
    const b = this.#dimensions;
    const D = this.#attributionLength;
    const W = this.#hosts.length;
    const of = new Uint16Array(n);
    const counts = new Array<number>(W).fill(0);
    for (let i = 0; i < n; i++) {
      const w = this.workerOf(batch.keys[i]!);
      of[i] = w;
      counts[w]!++;
    }
    const parts = counts.map((c) => new DetectionBatch(Math.max(c, 1), b, D));
    for (let i = 0; i < n; i++) {
      const part = parts[of[i]!]!;
      const j = part.count++;
      part.values.set(batch.values.subarray(i * b, (i + 1) * b), j * b);
      part.keys[j] = batch.keys[i]!;
      part.time[j] = batch.time[i]!;
    }
    const results = await Promise.all(parts.map((part, w) => (part.count > 0 ? this.#hosts[w]!.submit(part) : Promise.resolve(undefined))));
    const out: BatchResults = {
      score: new Float64Array(n),
      grade: new Float64Array(n),
      threshold: new Float64Array(n),
      anomaly: new Uint8Array(n),
      high: D > 0 ? new Float64Array(n * D) : undefined,
      low: D > 0 ? new Float64Array(n * D) : undefined,
    };
    const next = new Array<number>(W).fill(0);
    for (let i = 0; i < n; i++) {
      const w = of[i]!;
      const r = results[w]!;
      const j = next[w]!++;
      out.score[i] = r.score[j]!;
      out.grade[i] = r.grade[j]!;
      out.threshold[i] = r.threshold[j]!;
      out.anomaly[i] = r.anomaly[j]!;
      if (D > 0) {
        out.high!.set(r.high!.subarray(j * D, (j + 1) * D), i * D);
        out.low!.set(r.low!.subarray(j * D, (j + 1) * D), i * D);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.#hosts.map((h) => h.close()));
  }
}

/** The worker's side: builds the detector, then scores batches as they come. */
async function serve(): Promise<void> {
  const port = parentPort!;
  const spec = (workerData as { spec: DetectorSpec }).spec;
  let detector: RecordDetector;
  try {
    detector = await createRecordDetector(spec);
  } catch (error) {
    port.postMessage({ error: (error as Error).message } satisfies WorkerReply);
    return;
  }
  const b = spec.forest.dimensions;
  const D = spec.attribution ? b * (spec.forest.shingleSize ?? 1) : 0;
  let batch = new DetectionBatch(0, b, D);
  port.on('message', (request: WorkerRequest) => {
    try {
      if (batch.capacity < request.n) batch = new DetectionBatch(request.n, b, D);
      batch.values.set(request.values);
      batch.time.set(request.time);
      if (request.keys !== undefined) for (let i = 0; i < request.n; i++) batch.keys[i] = request.keys[i]!;
      batch.count = request.n;
      detector.run(batch);
      const { results, transfer } = copyResults(batch, request.n);
      port.postMessage({ results, size: detector.size, evictions: detector.evictions } satisfies WorkerReply, transfer);
    } catch (error) {
      port.postMessage({ error: (error as Error).message } satisfies WorkerReply);
    }
  });
  port.postMessage({ ready: true } satisfies WorkerReply);
}

if (!isMainThread && (workerData as { mark?: string } | null)?.mark === WORKER_MARK) void serve();
