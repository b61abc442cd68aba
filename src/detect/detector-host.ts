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
      const n = request.n;
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
      port.postMessage({ results, size: detector.size, evictions: detector.evictions } satisfies WorkerReply, transfer);
    } catch (error) {
      port.postMessage({ error: (error as Error).message } satisfies WorkerReply);
    }
  });
  port.postMessage({ ready: true } satisfies WorkerReply);
}

if (!isMainThread && (workerData as { mark?: string } | null)?.mark === WORKER_MARK) void serve();
