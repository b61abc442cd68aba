/**
 * How many scoring threads `run` uses when --workers is not given. Scores equal one
 * thread's whatever the count (each shard's models live on one worker), so the default
 * only has to fit the machine and the stream:
 *
 *   model scope shard:        min(cores, 8, shards open at start), at least 1
 *   model scope key / stream: 1 (one model spans shards; more workers are refused)
 *
 * 1 means the main thread (no pool). The count is fixed when the service starts: shards
 * a resharding adds later are hashed onto the same workers (modelWorkerOf), so the result
 * stays identical and a restart picks up the new shard count.
 */
import type { ModelScope } from '../detect/settings.js';

/** More threads than this rarely pay: the main thread's reading and formatting becomes the limit. */
export const MAX_DEFAULT_WORKERS = 8;

export interface DefaultWorkersInput {
  scope: ModelScope;
  /** Open shards of the input stream when the service starts; undefined when they could not be listed. */
  openShards: number | undefined;
  /** The machine's cores (os.availableParallelism()). */
  cores: number;
  /** Whether worker threads can run here (the compiled worker module exists). */
  available: boolean;
}

/** The default --workers (see the module comment). */
export function defaultWorkers(input: DefaultWorkersInput): number {
  if (input.scope !== 'shard' || !input.available || input.openShards === undefined) return 1;
  return Math.max(1, Math.min(input.cores, MAX_DEFAULT_WORKERS, input.openShards));
}

