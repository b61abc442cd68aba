/**
 * `rcf-stream generate --to-kinesis STREAM`: the reference scenario's
 * temperature records put on a Kinesis stream (PutRecords through
 * KinesisSink, which retries only failed entries) instead of stdout.
 *
 * Each record is one JSON object, `{"time":t,"value":v}`, under the partition
 * key `--partition-key` (default: the record's time, which spreads records
 * over all shards). generate-command.ts hands over argv when it sees
 * --to-kinesis; the options are generate's plus the Kinesis ones below.
 */
import { createKinesisClient, type AwsConfig } from '../aws/clients.js';
import { KinesisSink, KinesisSinkError, type KinesisSinkStats, type SinkEntry } from '../aws/kinesis-sink.js';
import { TemperatureSeries, formatNdjsonLine } from '../generate/temperature.js';
import {
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_USAGE,
  UsageError,
  formatCount,
  integerOption,
  parseCommandArgs,
  processIo,
  stringOption,
  type CliIo,
} from './args.js';
import { errorMessage } from '../aws/retry.js';
import { readGeneratorSettings } from './generator-settings.js';

export const KINESIS_PRODUCER_HELP = `
To Kinesis (instead of stdout)
  --to-kinesis NAME|ARN  put the records on this Kinesis stream (PutRecords)
  --kinesis-endpoint URL Kinesis endpoint (local servers; implies HTTP/1.1)
  --region REGION        AWS region                                  [SDK chain]
  --partition-key K      partition key of every record               [the record's time]
  --batch N              records per PutRecords call (1-500)         [500]
`;

export interface ProducerOptions {
  stream: string;
  aws: AwsConfig;
  count: number;
  seed: number;
  outlierRate: number;
  labels: boolean;
  /** Records per second; undefined: as fast as Kinesis takes them. */
  rate?: number;
  partitionKey?: string;
  batchSize?: number;
  signal?: AbortSignal;
}

export interface ProducerSummary {
  records: number;
  outliers: number;
  seconds: number;
  sink: KinesisSinkStats;
  stoppedBy: 'end' | 'aborted';
}

/** Puts the generated series on the stream; resolves when Kinesis accepted every record. */
export async function produceToKinesis(options: ProducerOptions): Promise<ProducerSummary> {
  const client = createKinesisClient(options.aws);
  const ref = options.stream.startsWith('arn:') ? { streamArn: options.stream } : { streamName: options.stream };
  const sink = new KinesisSink({ client, ...ref, ...(options.signal ? { signal: options.signal } : {}) });
  const series = new TemperatureSeries({ count: options.count, seed: options.seed, outlierRate: options.outlierRate });
  const batchSize = Math.min(500, Math.max(1, options.batchSize ?? 500));
  const rate = options.rate;
  const started = performance.now();
  let records = 0;
  let outliers = 0;
  let stoppedBy: ProducerSummary['stoppedBy'] = 'end';
  try {
    for (;;) {
      if (options.signal?.aborted) {
        stoppedBy = 'aborted';
        break;
      }
      // With a rate, send what has come due (at most a batch), then sleep until the next is due.
      let want = batchSize;
      if (rate !== undefined) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate) + 1 - records;
        if (due <= 0) {
          await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(((records + 1) / rate) * 1000 - (performance.now() - started)))));
          continue;
        }
        want = Math.min(batchSize, due);
      }
      const entries: SinkEntry[] = [];
      while (entries.length < want && series.advance()) {
        const line = formatNdjsonLine({ time: series.time, value: series.value, ...(options.labels ? { label: series.outlier ? 1 : 0 } : {}) });
        entries.push({ data: Buffer.from(line.trimEnd(), 'utf8'), partitionKey: options.partitionKey ?? String(series.time) });
        if (series.outlier) outliers++;
      }
      if (entries.length === 0) break;
      try {
        await sink.put(entries);
      } catch (error) {
        // Ctrl-C during a put: the records of that call may or may not have landed.
        if (options.signal?.aborted) {
          stoppedBy = 'aborted';
          break;
        }
        throw error;
      }
      records += entries.length;
    }
  } finally {
    client.destroy();
  }
  return { records, outliers, seconds: (performance.now() - started) / 1000, sink: sink.stats(), stoppedBy };
}

const PRODUCER_OPTIONS = {
  'to-kinesis': { type: 'string' },
  'kinesis-endpoint': { type: 'string' },
  region: { type: 'string' },
  'partition-key': { type: 'string' },
  batch: { type: 'string' },
  count: { type: 'string' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  'outlier-rate': { type: 'string' },
  labels: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `generate` with --to-kinesis: reads generate's argv (and the options above). */
export async function runKinesisProducerCommand(argv: string[], io: CliIo = processIo()): Promise<number> {
  let options: ProducerOptions;
  let quiet: boolean;
  try {
    const { values } = parseCommandArgs(argv, PRODUCER_OPTIONS, 0);
    if (values.help === true) {
      io.stdout.write(KINESIS_PRODUCER_HELP.trimStart());
      return EXIT_OK;
    }
    const stream = stringOption(values, 'to-kinesis')?.trim();
    if (!stream) throw new UsageError('--to-kinesis needs a stream name or ARN');
    const generator = readGeneratorSettings(values);
    const aws: AwsConfig = {};
    const endpoint = stringOption(values, 'kinesis-endpoint')?.trim() || process.env['RCF_KINESIS_ENDPOINT'];
    if (endpoint) aws.endpoints = { kinesis: endpoint };
    const region = stringOption(values, 'region')?.trim();
    if (region) aws.region = region;
    options = {
      stream,
      aws,
      count: generator.count,
      seed: generator.seed,
      outlierRate: generator.outlierRate,
      labels: generator.labels,
      batchSize: integerOption(values, 'batch', 1, 500) ?? 500,
    };
    if (generator.rate !== undefined) options.rate = generator.rate;
    const pk = stringOption(values, 'partition-key');
    if (pk !== undefined) {
      if (pk.length < 1 || [...pk].length > 256) throw new UsageError('--partition-key must be 1-256 characters');
      options.partitionKey = pk;
    }
    quiet = generator.quiet;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`rcf-stream generate: ${error.message} (see rcf-stream generate --help)\n`);
    return EXIT_USAGE;
  }

  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  options.signal = abort.signal;
  try {
    const s = await produceToKinesis(options);
    if (!quiet) {
      io.stderr.write(
        `rcf-stream generate: ${formatCount(s.records)} records (${formatCount(s.outliers)} injected outliers) put on ${options.stream} ` +
          `in ${s.seconds.toFixed(2)} s (${formatCount(s.records / Math.max(s.seconds, 1e-9))} records/s, ${s.sink.putRecordsCalls} PutRecords calls, ` +
          `${s.sink.retriedRecords} records retried)${s.stoppedBy === 'aborted' ? '; interrupted' : ''}\n`,
      );
    }
    return s.stoppedBy === 'aborted' ? EXIT_INTERRUPTED : EXIT_OK;
  } catch (error) {
    io.stderr.write(`rcf-stream generate: ${error instanceof KinesisSinkError ? error.message : `cannot put records on ${options.stream}: ${errorMessage(error)}`}\n`);
    return EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
