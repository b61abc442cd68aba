/**
 * Named models on N worker threads, for a pipeline whose models are partitioned by name
 * (a service's per-shard models): each name belongs to one worker (a stable hash of the
 * name), that worker creates the name's detector on its first batch, exactly as
 * createRecordDetector() would on the caller's thread, so every name's scores equal one
 * thread's. Besides scoring, the protocol snapshots every model (snapshotDetector bytes,
 * by name) and loads restored ones, so a checkpoint taken with N workers is the same
 * image as one taken on one thread, and either restores the other's.
 *
 * Each worker handles its messages strictly one after another (a promise chain: creating
 * or restoring a detector awaits the kernel), so a snapshot requested after a batch was
 * submitted includes that batch. Scoring results are written back into the caller's batch.
 *
 * Used by `run --workers N` (src/service/service.ts): a checkpoint drains the delivery queue
 * (scoring included), then asks every worker for its snapshots.
 *
 * Spread 'keys' (`detect --key-field --workers N`: one partition, many keys) instead splits each
 * batch of a name by key: each key belongs to one worker (the same hash of the key), whose
 * models of that name hold its keys, so each key's model sees its records in order and scores
 * exactly as on one thread (as long as no model is evicted: each worker keeps up to maxKeys).
 * Such models are not snapshot (one name's models are on every worker).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DetectionBatch, type RecordDetector } from './detector.js';
import { copyResults, createRecordDetector, type BatchResults, type DetectorSpec } from './detector-spec.js';
import { restoreDetector, snapshotDetector } from './detector-snapshot.js';
import { graderFactory } from './strategy.js';
import { RcfStreamError } from '../util/errors.js';

/** A model worker failed: it could not start, score, snapshot or load, or it exited. */
export class ModelWorkerError extends RcfStreamError {
  override readonly name = 'ModelWorkerError';
  readonly code = 'MODEL_WORKER';
}

const WORKER_MARK = 'rcf-stream model worker';

type Request =
  | { id: number; op: 'score'; name: string; n: number; values: Float64Array; time: Float64Array; keys: string[] | undefined }
  | { id: number; op: 'snapshot' }
  | { id: number; op: 'load'; parts: [string, Uint8Array][] };

/** Omit distributed over the union's members. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type Reply =
  | { id: number; size: number; evictions: number; results?: BatchResults; parts?: [string, Uint8Array][] }
  | { id: number; error: string };

function workerFile(): string | undefined {
  const path = fileURLToPath(import.meta.url);
  return path.endsWith('.js') && existsSync(path) ? path : undefined;
}

/** The worker of `name` among `workers`: 32-bit FNV-1a of its UTF-16 units, modulo the workers. */
export function modelWorkerOf(name: string, workers: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % workers;
}

class ModelWorker {
  size = 0;
  evictions = 0;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #next = 0;
  #failure: Error | undefined;

  constructor(readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (waiter === undefined) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) waiter.reject(new ModelWorkerError(reply.error));
      else {
        this.size = reply.size;
        this.evictions = reply.evictions;
        waiter.resolve(reply);
      }
    });
    worker.on('error', (error: Error) => this.#fail(error));
    worker.on('exit', (code) => this.#fail(new ModelWorkerError(`model worker exited (code ${code})`)));
  }

  request(message: WithoutId<Request>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#pending.values()) waiter.reject(this.#failure);
    this.#pending.clear();
  }

  async close(): Promise<void> {
    this.#failure ??= new ModelWorkerError('model worker closed');
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/** How a pool places models: whole names on one worker each, or one name's keys over every worker. */
export type ModelSpread = 'names' | 'keys';

export class ModelWorkerPool {
  readonly #workers: ModelWorker[];
  readonly #keyed: boolean;
  readonly #byKey: boolean;
  /** Spread 'keys': the worker of each key seen lately (hashing every record's key costs more). */
  readonly #keyWorker = new Map<string, number>();

  private constructor(workers: ModelWorker[], spec: DetectorSpec, spread: ModelSpread) {
    this.#workers = workers;
    this.#keyed = spec.keyed;
    this.#byKey = spread === 'keys' && workers.length > 1;
  }

  /** Whether workers can be started (the compiled module exists). */
  static get available(): boolean {
    return workerFile() !== undefined;
  }

  static async start(spec: DetectorSpec, workers: number, spread: ModelSpread = 'names'): Promise<ModelWorkerPool> {
    if (spread === 'keys' && !spec.keyed) throw new ModelWorkerError('models spread by key need keyed models (one model cannot be split)');
    const file = workerFile();
    if (file === undefined) throw new ModelWorkerError('model workers need the compiled module (run from dist/)');
    if (!Number.isSafeInteger(workers) || workers < 1) throw new RangeError(`model workers: ${workers} is not a positive whole number`);
    const started: ModelWorker[] = [];
    try {
      for (let i = 0; i < workers; i++) {
        const worker = new Worker(file, { workerData: { mark: WORKER_MARK, spec } });
        started.push(new ModelWorker(worker));
      }
      // A worker that cannot build the kernel fails here, not on the first batch.
      await Promise.all(started.map((w) => w.request({ op: 'snapshot' })));
    } catch (error) {
      await Promise.all(started.map((w) => w.close()));
      throw error;
    }
    return new ModelWorkerPool(started, spec, spread);
  }

  get workers(): number {
    return this.#workers.length;
  }

  workerOf(name: string): number {
    return modelWorkerOf(name, this.#workers.length);
  }

  /** Models held and evicted, as of each worker's last reply. */
  get size(): number {
    return this.#workers.reduce((n, w) => n + w.size, 0);
  }

  get evictions(): number {
    return this.#workers.reduce((n, w) => n + w.evictions, 0);
  }

  /** Scores `batch` with `name`'s models on its worker; the results are written into the batch. */
  async run(name: string, batch: DetectionBatch): Promise<void> {
    if (this.#byKey) return this.#runByKey(name, batch);
    const n = batch.count;
    const values = batch.values.slice(0, n * batch.dimensions);
    const time = batch.time.slice(0, n);
    const keys = this.#keyed ? batch.keys.slice(0, n) : undefined;
    const reply = await this.#workers[this.workerOf(name)]!.request({ op: 'score', name, n, values, time, keys }, [values.buffer as ArrayBuffer, time.buffer as ArrayBuffer]);
    const r = (reply as { results?: BatchResults }).results!;
    batch.score.set(r.score);
    batch.grade.set(r.grade);
    batch.threshold.set(r.threshold);
    batch.anomaly.set(r.anomaly);
    if (r.high !== undefined && batch.high !== undefined) batch.high.set(r.high);
    if (r.low !== undefined && batch.low !== undefined) batch.low.set(r.low);
  }

  /** The worker of `key` (spread 'keys'). */
  workerOfKey(key: string): number {
    let w = this.#keyWorker.get(key);
    if (w !== undefined) return w;
    w = modelWorkerOf(key, this.#workers.length);
    if (this.#keyWorker.size >= 1 << 16) this.#keyWorker.clear();
    this.#keyWorker.set(key, w);
    return w;
  }

  /** Spread 'keys': the batch split by the workers of its keys, scored in parallel, results put back in its order. */
  async #runByKey(name: string, batch: DetectionBatch): Promise<void> {
    const n = batch.count;
    const b = batch.dimensions;
    const D = batch.attributionLength;
    const W = this.#workers.length;
    const of = new Uint16Array(n);
    const counts = new Int32Array(W);
    for (let i = 0; i < n; i++) {
      const w = this.workerOfKey(batch.keys[i]!);
      of[i] = w;
      counts[w]!++;
    }
    const values = Array.from(counts, (c) => new Float64Array(c * b));
    const time = Array.from(counts, (c) => new Float64Array(c));
    const keys = Array.from(counts, (c) => new Array<string>(c));
    const at = new Int32Array(W);
    for (let i = 0; i < n; i++) {
      const w = of[i]!;
      const j = at[w]!++;
      const v = values[w]!;
      for (let d = 0; d < b; d++) v[j * b + d] = batch.values[i * b + d]!;
      time[w]![j] = batch.time[i]!;
      keys[w]![j] = batch.keys[i]!;
    }
    const replies = await Promise.all(
      this.#workers.map((worker, w) =>
        counts[w]! > 0 ? worker.request({ op: 'score', name, n: counts[w]!, values: values[w]!, time: time[w]!, keys: keys[w]! }, [values[w]!.buffer, time[w]!.buffer]) : undefined,
      ),
    );
    const results = replies.map((r) => (r as { results?: BatchResults } | undefined)?.results);
    at.fill(0);
    for (let i = 0; i < n; i++) {
      const w = of[i]!;
      const j = at[w]!++;
      const r = results[w]!;
      batch.score[i] = r.score[j]!;
      batch.grade[i] = r.grade[j]!;
      batch.threshold[i] = r.threshold[j]!;
      batch.anomaly[i] = r.anomaly[j]!;
      if (D > 0) {
        batch.high!.set(r.high!.subarray(j * D, (j + 1) * D), i * D);
        batch.low!.set(r.low!.subarray(j * D, (j + 1) * D), i * D);
      }
    }
  }

  /** snapshotDetector() bytes of every model, by name, sorted by name (after every batch submitted before). */
  async snapshot(): Promise<Map<string, Uint8Array>> {
    if (this.#byKey) throw new ModelWorkerError('models spread over the workers by key cannot be snapshot by name');
    const replies = await Promise.all(this.#workers.map((w) => w.request({ op: 'snapshot' })));
    const parts = replies.flatMap((r) => (r as { parts?: [string, Uint8Array][] }).parts ?? []);
    parts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return new Map(parts);
  }

  /** Loads restored models (snapshotDetector bytes by name), each on its name's worker, replacing any of that name. */
  async load(parts: Iterable<[string, Uint8Array]>): Promise<void> {
    if (this.#byKey) throw new ModelWorkerError('models spread over the workers by key cannot be loaded by name');
    const per = this.#workers.map((): [string, Uint8Array][] => []);
    for (const [name, bytes] of parts) per[this.workerOf(name)]!.push([name, bytes]);
    await Promise.all(per.map((p, w) => (p.length > 0 ? this.#workers[w]!.request({ op: 'load', parts: p }) : undefined)));
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.close()));
  }
}

/** The worker's side: detectors by name, one message at a time. */
function serve(): void {
  const port = parentPort!;
  const spec = (workerData as { spec: DetectorSpec }).spec;
  const detectors = new Map<string, RecordDetector>();
  const b = spec.forest.dimensions;
  const D = spec.attribution ? b * (spec.forest.shingleSize ?? 1) : 0;
  let batch = new DetectionBatch(0, b, D);
  const totals = (): { size: number; evictions: number } => {
    let size = 0;
    let evictions = 0;
    for (const d of detectors.values()) {
      size += d.size;
      evictions += d.evictions;
    }
    return { size, evictions };
  };
  const handle = async (request: Request): Promise<void> => {
    try {
      if (request.op === 'score') {
        let detector = detectors.get(request.name);
        if (detector === undefined) {
          detector = await createRecordDetector(spec);
          detectors.set(request.name, detector);
        }
        const n = request.n;
        if (batch.capacity < n) batch = new DetectionBatch(n, b, D);
        batch.values.set(request.values);
        batch.time.set(request.time);
        if (request.keys !== undefined) for (let i = 0; i < n; i++) batch.keys[i] = request.keys[i]!;
        batch.count = n;
        detector.run(batch);
        const { results, transfer } = copyResults(batch, n);
        port.postMessage({ id: request.id, ...totals(), results } satisfies Reply, transfer);
      } else if (request.op === 'snapshot') {
        const parts: [string, Uint8Array][] = [...detectors].map(([name, d]) => [name, snapshotDetector(d)]);
        port.postMessage({ id: request.id, ...totals(), parts } satisfies Reply);
      } else {
        const grader = await graderFactory(spec.threshold);
        const options = { forest: spec.forest, grader, attribution: spec.attribution, maxKeys: spec.maxKeys, engine: spec.forest.engine ?? 'wasm' } as const;
        for (const [name, bytes] of request.parts) {
          const restored = await restoreDetector(bytes, options);
          detectors.get(name)?.dispose();
          detectors.set(name, restored);
        }
        port.postMessage({ id: request.id, ...totals() } satisfies Reply);
      }
    } catch (error) {
      port.postMessage({ id: request.id, error: (error as Error).message } satisfies Reply);
    }
  };
  let chain = Promise.resolve();
  port.on('message', (request: Request) => {
    chain = chain.then(() => handle(request));
  });
}

if (!isMainThread && (workerData as { mark?: string } | null)?.mark === WORKER_MARK) serve();
