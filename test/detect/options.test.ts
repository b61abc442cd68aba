import { describe, expect, it } from 'vitest';
import { DETECTION_OPTIONS, readDetectionSettings, spellOption } from '../../src/detect/options.js';
import { OptionError } from '../../src/util/option-error.js';
import { loadServiceConfig } from '../../src/service/run-config.js';
import { parseDetectArgs } from '../../src/cli/detect-command.js';

/** The UsageError message `run` gives for these flags, environment and config file. */
async function runError(argv: string[], env: Record<string, string> = {}, file?: unknown): Promise<string> {
  try {
    await loadServiceConfig(['--input-stream', 'in', ...argv, ...(file !== undefined ? ['--config', 'c.json'] : [])], { env, readTextFile: async () => JSON.stringify(file) });
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('the detection option table', () => {
  it('names the option of a bad value as a structured field', () => {
    const error = (() => {
      try {
        readDetectionSettings({ trees: '0' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(OptionError);
    expect((error as OptionError).option).toBe('numberOfTrees');
    expect((error as OptionError).detail).toBe('must be between 1 and 1000, got 0');
    expect(() => readDetectionSettings({ 'time-field': '' })).toThrow(expect.objectContaining({ option: 'timeField', code: 'BAD_OPTION' }) as Error);
    expect(() => readDetectionSettings({ seed: '99999999999999999999' })).toThrow(expect.objectContaining({ option: 'randomSeed' }) as Error);
  });

  it('spells an option as each interface does', () => {
    expect(['flag', 'env', 'json'].map((s) => spellOption('numberOfTrees', s as 'flag'))).toEqual(['--trees', 'RCF_TREES', 'numberOfTrees']);
    expect(['flag', 'env', 'json'].map((s) => spellOption('timeField', s as 'flag'))).toEqual(['--time-field', 'RCF_TIME_FIELD', 'timeField']);
    expect(new Set(DETECTION_OPTIONS.map((o) => o.flag)).size).toBe(DETECTION_OPTIONS.length);
  });

  it('run prints the option as it was given: flag, environment variable or config key', async () => {
    expect(await runError(['--trees', '0'])).toBe('--trees must be between 1 and 1000, got 0');
    expect(await runError([], { RCF_TREES: '0' })).toBe('RCF_TREES must be between 1 and 1000, got 0');
    expect(await runError([], {}, { numberOfTrees: 0 })).toBe('c.json: numberOfTrees must be between 1 and 1000, got 0');
    expect(await runError([], { RCF_SEED: 'x' })).toBe('RCF_SEED must be an integer, got "x"');
    expect(await runError([], {}, { timeField: '' })).toBe('c.json: timeField must be a non-empty name');
  });

  it('detect and run accept and reject the same detection values', async () => {
    for (const [flag, value] of [['trees', '0'], ['sample-size', '5'], ['threshold', 'high'], ['shingle', '31'], ['engine', 'gpu'], ['fields', 'a,a']] as const) {
      let detectMessage = '';
      try {
        parseDetectArgs([`--${flag}`, value]);
      } catch (e) {
        detectMessage = (e as Error).message;
      }
      expect(detectMessage).not.toBe('');
      expect(await runError([`--${flag}`, value])).toBe(detectMessage);
    }
  });
});
