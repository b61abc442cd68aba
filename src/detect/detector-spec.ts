/**
 * What a pipeline's detector is made of, wherever it runs: the spec (forest, threshold,
 * attribution, keyed) a detector is created from, on the caller's thread or on a model
 * worker (src/detect/model-workers.ts, the one way of scoring on worker threads), and the
 * result columns a worker sends back for a scored batch.
 */
import { DetectionBatch, Detector, KeyedDetector, type RecordDetector } from './detector.js';
import { graderFactory } from './strategy.js';
import type { ForestOptions } from '../forest/options.js';
import type { ThresholdStrategy } from './strategy.js';

export interface DetectorSpec {
  forest: ForestOptions;
  threshold: ThresholdStrategy;
  attribution: boolean;
  /** One model per key when set. */
  keyed: boolean;
  maxKeys?: number;
}

/** A batch's results: the columns of DetectionBatch the sinks and the formatter read (a DetectionBatch is one). */
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
 * to transfer back to the main thread (a model worker's reply).
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

export async function createRecordDetector(spec: DetectorSpec): Promise<RecordDetector> {
  const grader = await graderFactory(spec.threshold);
  const options = { forest: spec.forest, grader, attribution: spec.attribution };
  return spec.keyed ? KeyedDetector.create({ ...options, maxKeys: spec.maxKeys }) : Detector.create(options);
}
