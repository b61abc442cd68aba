/**
 * The models of a multi-partition input (the shards of a Kinesis stream), grouped by
 * model scope (see ModelScope in src/detect/settings.ts):
 *
 *   scope 'shard':  shardId -> RecordDetector (one model, or one per key)
 *   scope 'key':    ''      -> KeyedDetector, refused when a key arrives on two open shards
 *   scope 'stream': ''      -> RecordDetector, refused once two shards are open at once
 *
 * A shard's detector is created on its first batch, exactly as `detect` would create one
 * (same seed, same per-key seeds), so a shard's scores equal `detect` over the shard's
 * records in order. With a ModelWorkerPool (scope 'shard' only) the detectors live on worker
 * threads, each shard's on one worker; scope checks stay here. A child shard after a split or merge starts new models: taking over
 * a parent's would make the result depend on which parent is read last.
 */
import type { DetectionBatch, RecordDetector } from '../detect/detector.js';
import { createRecordDetector, type DetectorSpec } from '../detect/detector-spec.js';
import type { ModelScope } from '../detect/settings.js';
import type { ModelWorkerPool } from '../detect/model-workers.js';
import { RcfStreamError } from '../util/errors.js';

/** A stream-wide model over several open shards: refused, scores would depend on arrival timing. */
export class ModelScopeError extends RcfStreamError {
  override readonly name = 'ModelScopeError';
  readonly code = 'MODEL_SCOPE';
}

export class ScopedModels {
  readonly scope: ModelScope;
  readonly #spec: DetectorSpec;
  readonly #detectors = new Map<string, RecordDetector>();
  /** Shards seen and not ended (stream scope: at most one). */
  readonly #open = new Set<string>();
  /** Key scope: the shard each key was last seen on. */
  readonly #keyShard = new Map<string, string>();

  /** Where the detectors are when not on this thread (scope 'shard'). */
  readonly pool: ModelWorkerPool | undefined;

  constructor(scope: ModelScope, spec: DetectorSpec, restored?: Map<string, RecordDetector>, pool?: ModelWorkerPool) {
    if (scope === 'key' && !spec.keyed) throw new ModelScopeError('--model-scope key needs --key-field (one model per key)');
    if (pool !== undefined && (scope !== 'shard' || (restored?.size ?? 0) > 0)) throw new Error('model workers hold whole shards\' models: scope shard, restored models loaded into the pool');
    this.pool = pool;
    this.scope = scope;
    this.#spec = spec;
    for (const [k, d] of restored ?? []) this.#detectors.set(k, d);
  }

  /** The name models of `partition` are kept under. */
  scopeOf(partition: string): string {
    return this.scope === 'shard' ? partition : '';
  }

  /** The detector for `partition`'s records, created (asynchronously: the kernel may need compiling) on first use. */
  async prepare(partition: string): Promise<void> {
    this.#checkOpen(partition);
    const name = this.scopeOf(partition);
    if (this.pool !== undefined) return; // the worker creates it on the first batch
    if (!this.#detectors.has(name)) this.#detectors.set(name, await createRecordDetector(this.#spec));
  }

  /** Scores the batch with `partition`'s models; prepare(partition) must have run. */
  run(partition: string, batch: DetectionBatch): void {
    this.#checkOpen(partition);
    const detector = this.#detectors.get(this.scopeOf(partition));
    if (detector === undefined) throw new Error(`no models prepared for ${partition}`);
    if (this.scope === 'key') this.#checkKeys(partition, batch);
    detector.run(batch);
  }

  /** Scores the batch with `partition`'s models on their worker (a pool only); results land in the batch. */
  runRemote(partition: string, batch: DetectionBatch): Promise<void> {
    this.#checkOpen(partition);
    return this.pool!.run(this.scopeOf(partition), batch);
  }

  /** The detector of `partition`, if created. */
  detectorOf(partition: string): RecordDetector | undefined {
    return this.#detectors.get(this.scopeOf(partition));
  }

  /** A shard was read to its end: with scope 'stream' its successor may start. */
  ended(partition: string): void {
    this.#open.delete(partition);
    if (this.scope === 'key') for (const [key, owner] of this.#keyShard) if (owner === partition) this.#keyShard.delete(key);
  }

  #checkOpen(partition: string): void {
    if (this.#open.has(partition)) return;
    if (this.scope === 'stream' && this.#open.size > 0) {
      const other = [...this.#open][0]!;
      throw new ModelScopeError(
        `--model-scope stream needs an input read one shard at a time, but ${other} and ${partition} are both open: ` +
          'one model fed by several shards would score records in arrival order, which changes from run to run. ' +
          'Use --model-scope shard (the default; one model per shard, or per key within it).',
      );
    }
    this.#open.add(partition);
  }

  /** Before any model learns: every key of the batch is not also fed by another open shard. */
  #checkKeys(partition: string, batch: DetectionBatch): void {
    const owners = this.#keyShard;
    for (let i = 0; i < batch.count; i++) {
      const key = batch.keys[i]!;
      const owner = owners.get(key);
      if (owner === partition) continue;
      if (owner !== undefined && this.#open.has(owner)) {
        throw new ModelScopeError(
          `--model-scope key needs each key in one shard at a time, but key ${JSON.stringify(key.slice(0, 100))} arrives on ${owner} and ${partition}: ` +
            'its model would learn in arrival order, which changes from run to run. Write records with the key field as partition key, or use --model-scope shard (the default).',
        );
      }
    }
    for (let i = 0; i < batch.count; i++) owners.set(batch.keys[i]!, partition);
  }

  entries(): IterableIterator<[string, RecordDetector]> {
    return this.#detectors.entries();
  }

  get size(): number {
    if (this.pool !== undefined) return this.pool.size;
    let n = 0;
    for (const d of this.#detectors.values()) n += d.size;
    return n;
  }

  get evictions(): number {
    if (this.pool !== undefined) return this.pool.evictions;
    let n = 0;
    for (const d of this.#detectors.values()) n += d.evictions;
    return n;
  }

  dispose(): void {
    for (const d of this.#detectors.values()) d.dispose();
    this.#detectors.clear();
    void this.pool?.close();
  }
}
