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
 * AWS's Java library (randomcutforest-core 4.3.0) measured side by side with our engines on
 * this machine, on one day: NOT measured by the bench run that prints it. Each row: the
 * median over interleaved rounds (Java, then WASM, then TS, each a fresh process: 20,000
 * warm-up then 100,000 timed points, score then update, sample size 256, this
 * configuration's stream and seed; the score sums of all three were equal). The ratios were
 * measured together, in that session; a bench run's own figures are never divided by these.
 * How it was run: bench/NOTES.md, "Java side by side".
 */
export const JAVA_SIDE_BY_SIDE = {
  date: '2026-12-02',
  conditions:
    'commit 61d8789, shared 2-core VM (AMD EPYC), OpenJDK 17.0.15, Node 20.20.2, load average 1.3-2.9 (median 1.5), ' +
    'points per CPU-second of each process (JIT, GC and compiler threads included), median of 5 rounds',
  rows: {
    't50-1d': { java: 21_552, wasm: 128_527, ts: 55_195 },
    't100-1d': { java: 14_124, wasm: 61_323, ts: 28_456 },
    't50-1d-s4': { java: 17_953, wasm: 90_417, ts: 29_106 },
    't30-3d': { java: 25_381, wasm: 140_742, ts: 61_878 },
    't30-5d-s8': { java: 11_905, wasm: 48_995, ts: 14_535 },
  } as Readonly<Record<string, { java: number; wasm: number; ts: number }>>,
};

/**
 * Published per-point score + update figures (points/s) for AWS's Java library 4.3.0 and the
 * Rust crate on this kind of machine, as given in issue 4: not measured here, shown as is.
 */
export const AWS_PUBLISHED: Readonly<Record<string, { java: number; rust: number }>> = {
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
