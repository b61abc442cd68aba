/**
 * `rcf-stream run`: the long-running streaming service (src/service). This
 * file only reads the configuration, starts the metrics / live-page server
 * when --http is given (handed to the service as its observer), wires signals
 * and maps the outcome to an exit status: 0 after a graceful stop, 1 after a
 * failure, 2 for bad options.
 */
import { EXIT_FAILURE, EXIT_OK, processIo, readCommandSettings, type CliIo } from './args.js';
import { loadServiceConfig, RUN_HELP } from '../service/run-config.js';
import { errorMessage } from '../aws/retry.js';
import { loadAwsCommand } from './aws-sdk.js';
import type { LiveServer } from '../http/live-server.js';

export { RUN_HELP };

export async function runServiceCommand(argv: string[], io: CliIo = processIo()): Promise<number> {
  const config = await readCommandSettings('run', RUN_HELP, io, () => loadServiceConfig(argv));
  if (typeof config === 'number') return config;

  // Loaded only now: the AWS SDK takes a second to load, which --help and option errors need not wait for,
  // and it is an optional dependency (aws-sdk.ts).
  const loaded = await loadAwsCommand('run', () => import('../service/service.js'));
  if ('missing' in loaded) {
    io.stderr.write(`${loaded.missing}\n`);
    return EXIT_FAILURE;
  }
  const { AnomalyService } = loaded.module;
  let service: Awaited<ReturnType<typeof AnomalyService.start>>;
  let live: LiveServer | undefined;
  try {
    if (config.http !== undefined) {
      live = await (await import('../http/live-server.js')).LiveServer.start(config.http);
      io.stderr.write(`rcf-stream run: metrics, health and the live page on ${live.url}/\n`);
    }
    service = await AnomalyService.start(config, { stdout: io.stdout, stderr: io.stderr, ...(live !== undefined ? { observer: live } : {}) });
  } catch (error) {
    await live?.close();
    io.stderr.write(`rcf-stream run: cannot start: ${errorMessage(error)}\n`);
    return EXIT_FAILURE;
  }

  // First signal: graceful stop. A second one: leave now (the last checkpoint stays valid).
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) service.stop(signal);
    else {
      io.stderr.write(`rcf-stream run: ${signal} again; exiting without a final checkpoint\n`);
      process.exit(EXIT_FAILURE);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await service.done;
    io.stderr.write(`rcf-stream run: stopped (${result.reason})\n`);
    return result.exitCode === 0 ? EXIT_OK : EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await live?.close();
  }
}
