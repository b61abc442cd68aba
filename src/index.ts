/**
 * rcf-stream: Random Cut Forest anomaly detection with AWS-identical scores.
 *
 *   const forest = await createForest({ dimensions: 1, randomSeed: 7 });
 *   const score = forest.score([30.1]); forest.update([30.1]);
 */
export { Forest, type Attribution } from './forest/forest.js';
export { LIMITS, type EngineName, type ForestConfig, type ForestOptions } from './forest/options.js';
export { createForest, createForestSync, restoreForest, restoreForestSync, loadKernel } from './forest/create.js';
export { SnapshotError, decodeSnapshot, type SnapshotInfo } from './forest/snapshot.js';
export { RcfStreamError, isRcfStreamError } from './util/errors.js';
