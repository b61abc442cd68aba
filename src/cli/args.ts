/**
 * What the subcommands share: their streams, exit codes and the usage-error report. The
 * option readers live in src/util/option-args.ts (run's settings loader, used by the
 * Lambda handler too, needs them outside src/cli) and are re-exported here.
 */
import type { Readable, Writable } from 'node:stream';
import { UsageError } from '../util/option-args.js';

export {
  UsageError,
  parseCommandArgs,
  stringOption,
  integerOption,
  numberOption,
  choiceOption,
  listOption,
  type Parsed,
} from '../util/option-args.js';

/** Streams a command uses; the process's own unless a test or benchmark substitutes them. */
export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean; columns?: number };
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

export const EXIT_OK = 0;
/** Runtime failure: unreadable input, write error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** Stopped by Ctrl-C before the end of the input (the shell convention, 128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/** Thousands separators for people. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Reads a command's settings with `parse` (which returns undefined when --help was asked
 * for): prints the help, or a one-line usage error. Returns the settings, or the exit code
 * the command should end with.
 */
export async function readCommandSettings<T>(
  command: string,
  help: string,
  io: CliIo,
  parse: () => T | undefined | Promise<T | undefined>,
): Promise<T | number> {
  let settings: T | undefined;
  try {
    settings = await parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`rcf-stream ${command}: ${error.message} (see rcf-stream ${command} --help)\n`);
    return EXIT_USAGE;
  }
  if (settings === undefined) {
    io.stdout.write(help);
    return EXIT_OK;
  }
  return settings;
}
