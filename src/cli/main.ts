#!/usr/bin/env node
/**
 * The `rcf-stream` command: dispatches to its subcommands.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, processIo, type CliIo } from './args.js';
import { runDemoCommand } from './demo-command.js';
import { runDetectCommand } from './detect-command.js';
import { runGenerateCommand } from './generate-command.js';
import { silenceSdkNodeVersionWarning } from './sdk-warnings.js';

export const MAIN_HELP = `Usage: rcf-stream <command> [options]

Streaming anomaly detection with Random Cut Forest (scores identical to AWS's library).

Commands
  generate   write the reference scenario's temperature stream as NDJSON
  detect     score NDJSON or CSV records from a file or stdin
  demo       generator -> detector -> notifications, with a summary (npm start)
  eval       evaluate detectors on a labelled corpus
  run        run the streaming service

Options
  -h, --help      show this help (rcf-stream <command> --help for a command's)
  -v, --version   show the version
`;

/** Reads the version from the package's package.json (src/cli or dist/src/cli below it). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'rcf-stream' && typeof pkg.version === 'string') return pkg.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/**
 * Commands owned by other modules, loaded on demand so that a missing or broken module
 * only affects its own command.
 */
export async function runExternal(command: string, specifier: string, exportName: string, argv: string[], io: CliIo): Promise<number> {
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason = code === 'ERR_MODULE_NOT_FOUND' ? 'is not available in this build' : `could not be loaded: ${(error as Error).message}`;
    io.stderr.write(`rcf-stream: the "${command}" command ${reason}\n`);
    return EXIT_FAILURE;
  }
  const run = module[exportName];
  if (typeof run !== 'function') {
    io.stderr.write(`rcf-stream: the "${command}" command is not available in this build (${specifier} lacks ${exportName})\n`);
    return EXIT_FAILURE;
  }
  return (await (run as (argv: string[]) => Promise<number>)(argv)) ?? EXIT_OK;
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'generate':
      return runGenerateCommand(rest, io);
    case 'detect':
      return runDetectCommand(rest, io);
    case 'demo':
      return runDemoCommand(rest, io);
    case 'eval':
      return runExternal('eval', './eval-command.js', 'runEvalCommand', rest, io);
    case 'run':
      return runExternal('run', './run-command.js', 'runServiceCommand', rest, io);
    case '-v':
    case '--version':
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT_OK;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      (command === undefined ? io.stderr : io.stdout).write(MAIN_HELP);
      return command === undefined ? EXIT_USAGE : EXIT_OK;
    default:
      io.stderr.write(`rcf-stream: unknown command ${JSON.stringify(command)} (see rcf-stream --help)\n`);
      return EXIT_USAGE;
  }
}

/** True when this file is the program being run (directly or through the npm bin symlink). */
function isEntryPoint(): boolean {
  const invokedAs = process.argv[1];
  if (invokedAs === undefined) return false;
  try {
    return realpathSync(invokedAs) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // Before any AWS client exists; see sdk-warnings.ts for why and how to see it again.
  silenceSdkNodeVersionWarning();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`rcf-stream: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
