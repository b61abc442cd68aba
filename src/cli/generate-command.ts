/**
 * `rcf-stream generate`: the reference scenario's temperature stream as NDJSON on stdout.
 */
import { DEFAULT_COUNT, DEFAULT_OUTLIER_RATE, DEFAULT_SEED, writeNdjson } from '../generate/temperature.js';
import {
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_OK,
  formatCount,
  integerOption,
  numberOption,
  parseCommandArgs,
  processIo,
  readCommandSettings,
  stringOption,
  type CliIo,
  type Parsed,
} from './args.js';
import { loadAwsCommand } from './aws-sdk.js';

export const GENERATE_HELP = `Usage: rcf-stream generate [options]

Writes the reference scenario's data to stdout as NDJSON, one {"time": t, "value": v}
per line: a temperature of 30 +/- 2 with injected outliers anywhere in 15..45.

  --count N|inf          records to write ("inf": until interrupted)   [${DEFAULT_COUNT}]
  --rate N               records per second                          [unlimited]
  --seed N               random seed (integer)                       [${DEFAULT_SEED}]
  --outlier-rate X       probability of an injected outlier (0-1)     [${DEFAULT_OUTLIER_RATE}]
  --labels               add "label": 1 for injected outliers, else 0
  --quiet                no summary line on stderr (as for detect)
  -h, --help             show this help

To Kinesis (instead of stdout)
  --to-kinesis NAME|ARN  put the records on this Kinesis stream (PutRecords)
  --kinesis-endpoint URL Kinesis endpoint (local servers; implies HTTP/1.1)
  --region REGION        AWS region                                  [SDK chain]
  --partition-key K      partition key of every record               [the record's time]
  --batch N              records per PutRecords call (1-500)         [500]

Exit status: 0 when done (or when the reader of stdout went away), 1 on an error,
2 for bad options, 130 when stopped by Ctrl-C (SIGINT) or SIGTERM (the summary is
still printed unless --quiet).
`;

const GENERATE_OPTIONS = {
  count: { type: 'string' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  'outlier-rate': { type: 'string' },
  labels: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export { readGeneratorSettings, type GeneratorSettings } from './generator-settings.js';
import { readGeneratorSettings } from './generator-settings.js';

export async function runGenerateCommand(argv: string[], io: CliIo = processIo()): Promise<number> {
  // The Kinesis producer loads the AWS SDK, so only when asked for.
  if (argv.some((a) => a === '--to-kinesis' || a.startsWith('--to-kinesis='))) {
    const loaded = await loadAwsCommand('generate --to-kinesis', () => import('./kinesis-producer.js'));
    if ('missing' in loaded) {
      io.stderr.write(`${loaded.missing}\n`);
      return EXIT_FAILURE;
    }
    return loaded.module.runKinesisProducerCommand(argv, io);
  }
  const settings = await readCommandSettings('generate', GENERATE_HELP, io, () => {
    const { values } = parseCommandArgs(argv, GENERATE_OPTIONS, 0);
    return values.help === true ? undefined : readGeneratorSettings(values);
  });
  if (typeof settings === 'number') return settings;
  const { count, seed, outlierRate, labels, rate, quiet } = settings;

  // Ctrl-C ends an endless (or slow) stream cleanly, with its summary.
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await writeNdjson(io.stdout, { count, seed, outlierRate, labels }, { rate, signal: abort.signal });
    if (!quiet) {
      const ending = summary.stoppedBy === 'closed' ? '; output closed early' : summary.stoppedBy === 'aborted' ? '; interrupted' : '';
      io.stderr.write(`rcf-stream generate: ${formatCount(summary.records)} records (${formatCount(summary.outliers)} injected outliers)${ending}\n`);
    }
    return summary.stoppedBy === 'aborted' ? EXIT_INTERRUPTED : EXIT_OK;
  } catch (error) {
    io.stderr.write(`rcf-stream generate: cannot write output: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
