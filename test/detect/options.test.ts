import { describe, expect, it } from 'vitest';
import { DETECTION_OPTIONS, readDetectionSettings, spellOption } from '../../src/detect/options.js';
import { OptionError } from '../../src/util/option-error.js';
import { loadServiceConfig } from '../../src/service/run-config.js';
import { parseDetectArgs } from '../../src/cli/detect-command.js';
import { runEvalCommand } from '../../src/cli/eval-command.js';
import { runDemoCommand } from '../../src/cli/demo-command.js';
import { Readable, Writable } from 'node:stream';

/** What a command prints on stderr for argv (its usage error). */
async function commandError(run: typeof runEvalCommand, argv: string[]): Promise<string> {
  let err = '';
  const sink = (write: (s: string) => void): Writable => new Writable({ write: (c: Buffer, _e, cb) => (write(c.toString()), cb()) });
  await run(argv, { stdin: Readable.from([]), stdout: sink(() => undefined), stderr: sink((s) => (err += s)) });
  return err;
}

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

  it("eval and demo reject detection values with detect's messages, in their own spelling of the option", async () => {
    const detectMessage = (argv: string[]): string => {
      try {
        parseDetectArgs(argv);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    for (const [flag, value] of [['trees', '0'], ['sample-size', '5'], ['shingle', '31'], ['engine', 'gpu'], ['time-decay', '-1'], ['seed', '1.5'], ['seed', '9223372036854775808']] as const) {
      const expected = detectMessage([`--${flag}=${value}`]);
      expect(expected).not.toBe('');
      expect(await commandError(runEvalCommand, ['--data', 'no-such-dir', `--${flag}=${value}`])).toBe(`rcf-stream eval: ${expected} (see rcf-stream eval --help)\n`);
      const demoFlag = flag === 'seed' ? 'forest-seed' : flag;
      expect(await commandError(runDemoCommand, [`--${demoFlag}=${value}`])).toBe(`rcf-stream demo: ${expected.replace('--seed', '--forest-seed')} (see rcf-stream demo --help)\n`);
    }
    expect(await commandError(runDemoCommand, ['--threshold', 'high'])).toBe(`rcf-stream demo: ${detectMessage(['--threshold', 'high'])} (see rcf-stream demo --help)\n`);
    expect(await commandError(runEvalCommand, ['--data', 'x', '--fields', 'a,a'])).toBe(`rcf-stream eval: ${detectMessage(['--fields', 'a,a'])} (see rcf-stream eval --help)\n`);
  });
});
