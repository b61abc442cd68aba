/**
 * Every command's --help against the detection option table (src/detect/options.ts) and
 * against the documentation:
 * - a command's help lists a table option exactly when the command accepts it, with the
 *   table's description (one text for every command) and a default when the table has one;
 * - each `$ rcf-stream ... --help` excerpt in README.md and docs/*.md is the real output.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { DETECTION_OPTIONS } from '../../src/detect/options.js';
import { DETECT_HELP, parseDetectArgs } from '../../src/cli/detect-command.js';
import { EVAL_HELP, runEvalCommand } from '../../src/cli/eval-command.js';
import { DEMO_HELP, runDemoCommand } from '../../src/cli/demo-command.js';
import { RUN_HELP, loadServiceConfig } from '../../src/service/run-config.js';
import { ROOT, requireBuilt, runCli } from './cli-support.js';

/** The usage error a command gives for argv, or '' when it gives none. */
async function usageError(run: (argv: string[], io: { stdin: Readable; stdout: Writable; stderr: Writable }) => Promise<number>, argv: string[]): Promise<string> {
  let err = '';
  const sink = (write: (s: string) => void): Writable => new Writable({ write: (c: Buffer, _e, cb) => (write(c.toString()), cb()) });
  await run(argv, { stdin: Readable.from([]), stdout: sink(() => undefined), stderr: sink((s) => (err += s)) });
  return err;
}

async function thrown(f: () => unknown): Promise<string> {
  try {
    await f();
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

/** Whether the command takes `--flag` (its parser may still reject the value). */
const accepts: Record<string, (flag: string, isSwitch: boolean) => Promise<boolean>> = {
  detect: async (flag, isSwitch) => !/Unknown option/.test(await thrown(() => parseDetectArgs([`--${flag}`, ...(isSwitch ? [] : ['x'])]))),
  run: async (flag, isSwitch) => !/Unknown option/.test(await thrown(() => loadServiceConfig(['--input-stream', 's', `--${flag}`, ...(isSwitch ? [] : ['x'])], { env: {} }))),
  // A bad value, so neither command starts working on a valid one.
  eval: async (flag, isSwitch) => !/Unknown option/.test(await usageError(runEvalCommand, ['--data', 'no-such-dir', `--${flag}`, ...(isSwitch ? [] : ['x']), '--seeds', 'bad'])),
  demo: async (flag, isSwitch) => !/Unknown option/.test(await usageError(runDemoCommand, ['--count', 'bad', `--${flag}`, ...(isSwitch ? [] : ['x'])])),
};

const HELP: Record<string, string> = { detect: DETECT_HELP, run: RUN_HELP, eval: EVAL_HELP, demo: DEMO_HELP };

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const collapse = (s: string): string => s.replace(/\s+/g, ' ');

describe('--help and the detection option table', () => {
  for (const command of Object.keys(HELP)) {
    it(`${command} lists every table option it accepts, with the table's description, and no other`, async () => {
      const help = collapse(HELP[command]!);
      let listed = 0;
      for (const o of DETECTION_OPTIONS) {
        // `--trees N number of trees (1-1000) [50]`, wrapped and aligned in the real text.
        const row = new RegExp(`--([a-z-]+)${o.value !== undefined ? ` ${escape(o.value)}` : ''} ${escape(collapse(o.help))}( \\[[^\\]]+\\])?`).exec(help);
        const isSwitch = o.type === 'boolean';
        if (row === null) {
          expect(await accepts[command]!(o.flag, isSwitch), `${command} accepts --${o.flag} but its help does not list it`).toBe(false);
          continue;
        }
        listed++;
        expect(await accepts[command]!(row[1]!, isSwitch), `${command} lists --${row[1]} but does not accept it`).toBe(true);
        if (o.default !== undefined) expect(row[2], `${command}: the default of --${row[1]}`).toBeDefined();
        // One row per option.
        expect(help.split(`--${row[1]}${o.value !== undefined ? ` ${o.value}` : ''} ${collapse(o.help)}`).length, `--${row[1]} listed once`).toBe(2);
      }
      expect(listed).toBeGreaterThan(0);
    });
  }

  it('aligns each help on one column and keeps lines within 88 characters', () => {
    for (const [command, help] of Object.entries(HELP)) {
      const lines = help.split('\n');
      expect(lines.filter((l) => l.length > 88), command).toEqual([]);
      // Rows starting with an option whose description starts on the same line: one column per help.
      const columns = new Set(lines.map((l) => /^ {2}(-[^ ].*? {2,})\S/.exec(l)?.[1]?.length).filter((n) => n !== undefined));
      expect(columns.size, `${command}: ${[...columns].join(', ')}`).toBe(1);
    }
  });
});

describe('help excerpts in the documentation', () => {
  beforeAll(() => requireBuilt());

  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
  const excerpts: { file: string; args: string[]; text: string }[] = [];
  for (const file of files) {
    const md = readFileSync(join(ROOT, file), 'utf8');
    for (const m of md.matchAll(/```\n\$ rcf-stream ((?:[a-z]+ )?--help)\n([\s\S]*?)```/g)) excerpts.push({ file, args: m[1]!.split(' '), text: m[2]! });
  }

  it('finds the excerpts of every command', () => {
    expect(new Set(excerpts.map((e) => e.args.join(' ')))).toEqual(new Set(['--help', 'demo --help', 'generate --help', 'eval --help', 'run --help', 'detect --help']));
  });

  it('are the real output', async () => {
    for (const e of excerpts) {
      const r = await runCli(e.args);
      expect(r.code).toBe(0);
      expect(e.text, `${e.file}: rcf-stream ${e.args.join(' ')}`).toBe(r.stdout);
    }
  });
});
