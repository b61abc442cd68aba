/**
 * Choosing a threshold strategy from user settings (`--threshold 3.0`,
 * `--threshold auto [--parity aws]`) and making one grader per model.
 */
import type { ForestConfig } from '../forest/options.js';
import { FixedThresholdGrader } from './grader.js';
import { QualityGrader } from './quality-grader.js';
import type { GraderFactory } from './detector.js';
import { TrcfThresholder } from './thresholder.js';

export type ThresholdStrategy =
  /** anomaly iff score >= value once the forest is ready. */
  | { kind: 'fixed'; value: number }
  /** AWS ThresholdedRandomCutForest parity (rcf-algorithm.md §8). */
  | { kind: 'trcf' }
  /** The adaptive quality grader (src/detect/quality-grader.ts). */
  | { kind: 'quality' };

/** What `--threshold auto` without `--parity` means: the quality grader (TRCF parity is 'trcf'). */
export const AUTO_THRESHOLD: ThresholdStrategy['kind'] = 'quality';

export const DEFAULT_THRESHOLD = 3.0;

/**
 * Reads `--threshold` and `--parity`. Throws RangeError with a message naming the option.
 */
export function parseThresholdStrategy(threshold: string | undefined, parity: string | undefined): ThresholdStrategy {
  const text = (threshold ?? String(DEFAULT_THRESHOLD)).trim();
  if (text === 'auto') {
    if (parity === undefined) return AUTO_THRESHOLD === 'trcf' ? { kind: 'trcf' } : { kind: 'quality' };
    if (parity === 'aws') return { kind: 'trcf' };
    throw new RangeError(`--parity must be "aws", got ${JSON.stringify(parity)}`);
  }
  if (parity !== undefined) throw new RangeError('--parity applies only to --threshold auto');
  const value = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value)) throw new RangeError(`--threshold must be a number or "auto", got ${JSON.stringify(text)}`);
  return { kind: 'fixed', value };
}

/** A readable name for summaries and stats. */
export function describeStrategy(strategy: ThresholdStrategy): string {
  if (strategy.kind === 'fixed') return `fixed ${strategy.value}`;
  return strategy.kind === 'trcf' ? 'auto (AWS TRCF parity)' : 'auto (quality grader)';
}

/** Whether records carry `grade` and `threshold` (only the adaptive strategies vary them). */
export function isAdaptive(strategy: ThresholdStrategy): boolean {
  return strategy.kind !== 'fixed';
}

/** One grader per model. */
export async function graderFactory(strategy: ThresholdStrategy): Promise<GraderFactory> {
  switch (strategy.kind) {
    case 'fixed':
      return () => new FixedThresholdGrader(strategy.value);
    case 'trcf':
      return (config: Readonly<ForestConfig>) =>
        new TrcfThresholder({ dimensions: config.baseDimensions, shingleSize: config.shingleSize, timeDecay: config.timeDecay });
    case 'quality':
      return () => new QualityGrader();
  }
}
