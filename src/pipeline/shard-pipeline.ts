/**
 * The batch-level pipeline of one shard, for callers that own their own loop and state
 * (the Lambda handler: one invocation = one shard's batch, no long-lived timers):
 *
 *   const p = await ShardPipeline.create({ settings, shardId, sinks, state });
 *   const r = await p.processBatch(records);   // scored, delivered to every sink
 *   save(r.last, p.snapshot());                // the caller's conditional write
 *
 * A caller that delivers one batch in several steps (the Lambda commits the delivered
 * prefix when a step fails) calls processBatch per step and snapshot() once at the end;
 * `sinks` per call lets a long-lived pipeline (a warm container's) deliver through
 * sinks made for one invocation (its deadline, its notification rate window).
 *
 * Records at or below the position the state was saved at are skipped, so a replayed
 * batch is idempotent. The scores equal `rcf-stream detect` over the shard's records in
 * order with the same settings (same seed, same per-key seeds), whatever the batch sizes.
 * When a sink rejects, processBatch rejects too and the models in memory have learned
 * records that were not delivered: drop the pipeline and start again from the saved state.
 */
import type { DetectorSpec } from '../detect/detector-spec.js';
import type { DetectionSettings } from '../detect/settings.js';
import { graderFactory } from '../detect/strategy.js';
import { BatchProcessor } from './batch-processor.js';
import type { PipelineObserver, PipelineRecord, ScoredBatch, Sink } from './contracts.js';
import { decodeModels, encodeModels, modelFingerprint } from './models.js';
import type { PartitionKeySpec } from './records.js';
import { ScopedModels } from './scoped-models.js';
import { deliverAll } from './sinks.js';

/** A record's place in its shard. */
export interface ShardPosition {
  sequenceNumber: string;
  subSequence?: number;
}

export interface ShardPipelineOptions {
  settings: DetectionSettings;
  shardId: string;
  /** Delivered to in this order; each must acknowledge before the next. processBatch may name others per call. */
  sinks: Sink[];
  /** Models saved by an earlier processBatch (`models`), and where they stopped. */
  state?: { models: Uint8Array; last: ShardPosition | undefined } | undefined;
  emit?: 'anomalies' | 'all';
  /** Output partition keys (a Kinesis output). */
  partitionKey?: PartitionKeySpec;
  /** Build a notification per anomaly (for a NotificationSink), with this subject. */
  notifications?: { subject?: string };
  observer?: PipelineObserver;
}

export interface ShardBatchResult {
  scored: ScoredBatch;
  /** Records at or below the saved position, left out. */
  skipped: number;
  /** The last record handled (delivered or dead-lettered); undefined when none was. */
  last: ShardPosition | undefined;
}

/** Orders two positions in one shard: Kinesis sequence numbers are decimal integers of up to 128 bits. */
export function comparePositions(a: ShardPosition, b: ShardPosition): number {
  const x = BigInt(a.sequenceNumber);
  const y = BigInt(b.sequenceNumber);
  if (x !== y) return x < y ? -1 : 1;
  return (a.subSequence ?? -1) - (b.subSequence ?? -1);
}

export class ShardPipeline {
  readonly shardId: string;
  readonly #processor: BatchProcessor;
  readonly #models: ScopedModels;
  readonly #sinks: readonly Sink[];
  readonly #fingerprint: string;
  #last: ShardPosition | undefined;

  private constructor(shardId: string, processor: BatchProcessor, models: ScopedModels, sinks: Sink[], fingerprint: string, last: ShardPosition | undefined) {
    this.shardId = shardId;
    this.#processor = processor;
    this.#models = models;
    this.#sinks = sinks;
    this.#fingerprint = fingerprint;
    this.#last = last;
  }

  /** Restores the state's models (ModelMismatchError when they were trained with other settings) or starts new ones. */
  static async create(options: ShardPipelineOptions): Promise<ShardPipeline> {
    const s = options.settings;
    const spec: DetectorSpec = { forest: s.forest, threshold: s.threshold, attribution: s.explain, keyed: s.mapping.keyField !== undefined, maxKeys: s.maxKeys };
    const restored = new Map();
    if (options.state !== undefined) {
      restored.set(options.shardId, await decodeModels(options.state.models, { detect: s, grader: await graderFactory(s.threshold) }));
    }
    const models = new ScopedModels('shard', spec, restored);
    await models.prepare(options.shardId);
    const processor = new BatchProcessor({
      settings: s,
      models,
      emit: options.emit ?? 'anomalies',
      partitionKey: options.partitionKey,
      notifications: options.notifications,
      observer: options.observer,
    });
    return new ShardPipeline(options.shardId, processor, models, options.sinks, modelFingerprint(s), options.state?.last);
  }

  /** Where the models stand: the last record they learned (or set aside). */
  get last(): ShardPosition | undefined {
    return this.#last;
  }

  /** Dead letters by kind since create(). */
  get badByKind(): ReadonlyMap<string, number> {
    return this.#processor.badByKind;
  }

  /**
   * Scores the records (of this shard, in order) and delivers them to every sink (`options.sinks`
   * instead of the pipeline's, when given); the state to save is then `last` and snapshot().
   */
  async processBatch(records: readonly PipelineRecord[], options: { sinks?: readonly Sink[] } = {}): Promise<ShardBatchResult> {
    const last = this.#last;
    const fresh = last === undefined ? records : records.filter((r) => comparePositions(r, last) > 0);
    for (const r of fresh) if (r.shardId !== this.shardId) throw new RangeError(`a record of ${r.shardId} in the batch of ${this.shardId}`);
    const scored = this.#processor.process(this.shardId, fresh);
    const end = fresh[fresh.length - 1];
    // Learned now, whatever the sinks say: a rejection below leaves this pipeline unusable.
    if (end !== undefined) this.#last = end.subSequence === undefined ? { sequenceNumber: end.sequenceNumber } : { sequenceNumber: end.sequenceNumber, subSequence: end.subSequence };
    await deliverAll(options.sinks ?? this.#sinks, scored);
    return { scored, skipped: records.length - fresh.length, last: this.#last };
  }

  /** Every model of the shard as learned so far (detect --state format): save it with `last`. */
  snapshot(): Uint8Array {
    return encodeModels(this.#models.detectorOf(this.shardId)!, this.#fingerprint);
  }

  dispose(): void {
    this.#models.dispose();
  }
}
