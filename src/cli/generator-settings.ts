/**
 * The generator's options, read by `generate` and by `generate --to-kinesis`
 * (kinesis-producer.ts) alike; its own module so neither imports the other.
 */
import { DEFAULT_COUNT, DEFAULT_OUTLIER_RATE, DEFAULT_SEED } from '../generate/temperature.js';
import { integerOption, numberOption, stringOption, type Parsed } from './args.js';

/** The generator's settings, shared with `generate --to-kinesis` (kinesis-producer.ts). */
export interface GeneratorSettings {
  count: number;
  seed: number;
  outlierRate: number;
  labels: boolean;
  rate: number | undefined;
  quiet: boolean;
}

/** Reads the generator's options from parsed argv; throws UsageError. */
export function readGeneratorSettings(values: Parsed['values']): GeneratorSettings {
  const countText = stringOption(values, 'count');
  return {
    count: countText === 'inf' || countText === 'infinite' ? Infinity : (integerOption(values, 'count', 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_COUNT),
    seed: integerOption(values, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? DEFAULT_SEED,
    outlierRate: numberOption(values, 'outlier-rate', 0, 1) ?? DEFAULT_OUTLIER_RATE,
    labels: values.labels === true,
    rate: numberOption(values, 'rate', Number.MIN_VALUE),
    quiet: values.quiet === true,
  };
}

