/**
 * What the benchmark measures: forest configurations, their data, and published reference
 * figures for comparison.
 */
import type { EngineName } from '../src/index.js';
import type { StreamKind } from './streams.js';

export interface BenchConfig {
  /** Short key, used by --filter and in the JSON results. */
  id: string;
  /** Human-readable name for the table. */
  label: string;
  numberOfTrees: number;
  /** Base dimensions (values per record). */
  dimensions: number;
  shingleSize: number;
  sampleSize: number;
  randomSeed: number;
  stream: StreamKind;
}

export const ENGINES: readonly EngineName[] = ['wasm', 'ts'];

export const CONFIGS: readonly BenchConfig[] = [
  { id: 't50-1d', label: '50 trees, 1-D', numberOfTrees: 50, dimensions: 1, shingleSize: 1, sampleSize: 256, randomSeed: 7, stream: 'temp' },
  { id: 't100-1d', label: '100 trees, 1-D', numberOfTrees: 100, dimensions: 1, shingleSize: 1, sampleSize: 256, randomSeed: 7, stream: 'temp' },
  { id: 't50-1d-s4', label: '50 trees, 1-D, shingle 4', numberOfTrees: 50, dimensions: 1, shingleSize: 4, sampleSize: 256, randomSeed: 7, stream: 'temp' },
  { id: 't30-3d', label: '30 trees, 3-D', numberOfTrees: 30, dimensions: 3, shingleSize: 1, sampleSize: 256, randomSeed: 11, stream: 'wave3' },
  { id: 't30-5d-s8', label: '30 trees, 5-D, shingle 8', numberOfTrees: 30, dimensions: 5, shingleSize: 8, sampleSize: 256, randomSeed: 11, stream: 'wave5' },
];

/** Forest options of a configuration for one engine. */
export function forestOptions(config: BenchConfig, engine: EngineName, seedOffset = 0) {
  return {
    dimensions: config.dimensions,
    shingleSize: config.shingleSize,
    numberOfTrees: config.numberOfTrees,
    sampleSize: config.sampleSize,
    randomSeed: config.randomSeed + seedOffset,
    engine,
  };
}

/** Key of a table row: what --filter matches (case-insensitively), e.g. "t50-1d/wasm". */
export function rowKey(config: BenchConfig, engine: EngineName): string {
  return `${config.id}/${engine}`;
}

/**
 * AWS Random Cut Forest, per-point score + update throughput (points/s) on this kind of machine,
 * as given in issue 4: Java randomcutforest-core 4.3.0 and the Rust crate.
 */
export const AWS_REFERENCE: Readonly<Record<string, { java: number; rust: number }>> = {
  't50-1d': { java: 40_660, rust: 37_367 },
  't100-1d': { java: 20_756, rust: 18_223 },
  't50-1d-s4': { java: 28_618, rust: 29_511 },
};

/** Memory-scale check: many small forests alive in one process. */
export const SCALE_CHECK = {
  forests: 10_000,
  numberOfTrees: 30,
  sampleSize: 64,
  dimensions: 1,
  pointsEach: 200,
  /** Pass when the process RSS stays below this. */
  limitBytes: 2 * 1024 ** 3,
} as const;
