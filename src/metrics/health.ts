/**
 * What /healthz and /readyz answer, from the pipeline's stats (pure; the clock is injected).
 *
 * Ready (`/readyz` 200): the models are loaded (restored from the checkpoint or new: the
 * pipeline attached), the source has been assigned at least one shard, and the pipeline is
 * not stopping. Before that, and from the moment it stops, 503: a load balancer or a
 * rolling deploy should not count on it.
 *
 * Healthy (`/healthz` 200): alive and making progress. 503 when any of:
 * - the last `maxCheckpointFailures` checkpoint saves in a row failed (default 3);
 * - a shard is behind its tip (MillisBehindLatest > 0) and no record was scored for
 *   `stallMs` (default 5 minutes): reading is stuck;
 * - the pipeline stopped with a failure.
 * While starting (models loading) it is healthy: a long restore is not a reason to restart.
 */
import type { PipelineOutcome, PipelineStats } from '../pipeline/contracts.js';

export interface HealthOptions {
  maxCheckpointFailures?: number;
  stallMs?: number;
  now?: () => number;
}

export interface Verdict {
  ok: boolean;
  status: 'starting' | 'running' | 'stopping' | 'stopped';
  reasons: string[];
}

export class HealthMonitor {
  readonly #maxFailures: number;
  readonly #stallMs: number;
  readonly #now: () => number;
  #attached = false;
  #outcome: PipelineOutcome | undefined;
  #stopping = false;
  /** Checkpoint counters at the last save seen, to count failures in a row. */
  #saved = 0;
  #failedAtLastSave = 0;
  #scored = -1;
  #scoredAt: number;

  constructor(options: HealthOptions = {}) {
    this.#maxFailures = options.maxCheckpointFailures ?? 3;
    this.#stallMs = options.stallMs ?? 300_000;
    this.#now = options.now ?? Date.now;
    this.#scoredAt = this.#now();
  }

  attached(): void {
    this.#attached = true;
    this.#scoredAt = this.#now();
  }

  /** The pipeline began to stop (not ready any more). */
  stopping(): void {
    this.#stopping = true;
  }

  stopped(outcome: PipelineOutcome): void {
    this.#outcome = outcome;
  }

  /** Feeds a stats snapshot (call on every probe and now and then). */
  observe(s: PipelineStats): void {
    if (s.checkpoints.saved !== this.#saved) {
      this.#saved = s.checkpoints.saved;
      this.#failedAtLastSave = s.checkpoints.failed;
    }
    if (s.recordsScored !== this.#scored) {
      this.#scored = s.recordsScored;
      this.#scoredAt = this.#now();
    }
  }

  #status(): Verdict['status'] {
    if (this.#outcome !== undefined) return 'stopped';
    if (this.#stopping) return 'stopping';
    return this.#attached ? 'running' : 'starting';
  }

  health(s: PipelineStats | undefined): Verdict {
    if (s !== undefined) this.observe(s);
    const reasons: string[] = [];
    if (this.#outcome !== undefined && this.#outcome.exitCode !== 0) reasons.push(`stopped with a failure: ${this.#outcome.reason}`);
    if (s !== undefined) {
      const inRow = s.checkpoints.failed - this.#failedAtLastSave;
      if (inRow >= this.#maxFailures) reasons.push(`the last ${inRow} checkpoint saves failed`);
      const behind = Object.values(s.source?.millisBehindLatest ?? {}).some((ms) => ms > 0);
      const idleMs = this.#now() - this.#scoredAt;
      if (behind && idleMs >= this.#stallMs) reasons.push(`behind the stream's tip and no record scored for ${Math.round(idleMs / 1000)} s`);
    }
    return { ok: reasons.length === 0, status: this.#status(), reasons };
  }

  readiness(s: PipelineStats | undefined): Verdict {
    const reasons: string[] = [];
    const status = this.#status();
    if (status === 'starting') reasons.push('models not loaded yet');
    else if (status !== 'running') reasons.push(status);
    else {
      const src = s?.source;
      const shards = src === undefined ? 0 : src.shardsReading + src.shardsWaiting + src.shardsFinished;
      if (shards === 0) reasons.push('no shard assigned yet');
    }
    return { ok: reasons.length === 0, status, reasons };
  }
}
