/**
 * What decides how records are scored, whatever the interface (detect, run,
 * demo, the Lambda handler): the field mapping, the forest, the threshold and
 * the model bookkeeping. Presentation (progress bars, output paths, ...) is not
 * part of it. The model fingerprint (src/pipeline/models.ts) is computed from it.
 */
import type { ForestOptions } from '../forest/options.js';
import type { FieldMapping } from '../io/record-parser.js';
import type { ThresholdStrategy } from './strategy.js';

/**
 * Which records share a model:
 * - `shard`: one model per input shard (and per key within it with a key field);
 *   deterministic: a record's score depends only on its shard's order.
 * - `key` (needs a key field): one model per key across shards; deterministic when each
 *   key lives in one shard at a time (partition key = key field), which is checked: a
 *   key arriving on two open shards is refused.
 * - `stream`: one model for the whole input; deterministic only with one shard (or one
 *   input file) at a time, so a stream with several open shards refuses it.
 */
export type ModelScope = 'shard' | 'key' | 'stream';

export const MODEL_SCOPES: readonly ModelScope[] = ['shard', 'key', 'stream'];

export interface DetectionSettings {
  mapping: FieldMapping;
  forest: ForestOptions;
  threshold: ThresholdStrategy;
  /** Most models kept with a key field (LRU), per scope. */
  maxKeys: number;
  /** Attribution per record (explanations in the output). */
  explain: boolean;
  /** Only these output fields, in this order; undefined: input fields plus results. */
  outputFields: string[] | undefined;
}
