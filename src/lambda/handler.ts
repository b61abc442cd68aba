/**
 * `rcf-stream/lambda`: the AWS Lambda handler for a Kinesis event source
 * mapping with ReportBatchItemFailures.
 *
 *   export { handler } from 'rcf-stream/lambda'   // handler: "index.handler"
 *
 * Thin on purpose: per container it builds the configuration (RCF_* as for
 * `rcf-stream run`, see config.ts), the AWS clients and the WASM kernel once;
 * per invocation it splits the event by shard, hands each shard's records to
 * ShardBatchProcessor (shard-batch.ts: the shard's S3 state around the shared
 * pipeline's ShardPipeline, which scores, formats and delivers), and answers `{ batchItemFailures }`
 * with the first record each shard did not commit. The event source mapping
 * then retries from there; the stored state makes the retry skip what was
 * already learned.
 */
import type { Writable } from 'node:stream';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { createKinesisClient, createS3Client, createSnsClient, type AwsConfig } from '../aws/clients.js';
import type { SourceRecord } from '../aws/kinesis-source.js';
import { deaggregate, isAggregated } from '../aws/kpl.js';
import { errorMessage } from '../aws/retry.js';
import { loadKernel } from '../engine/wasm/wasm-engine.js';
import { createLogger, type ServiceLogger } from '../service/logger.js';
import { emfLines } from '../metrics/emf.js';
import { loadLambdaConfig, type LambdaConfig } from './config.js';
import type { ShardPipeline } from '../pipeline/shard-pipeline.js';
import { ShardBatchProcessor, type ShardBatchResult } from './shard-batch.js';
import { ShardStateStore } from './shard-state.js';

export type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';

export interface LambdaRuntimeOptions {
  env?: NodeJS.ProcessEnv;
  /** Merged over the configuration's AWS settings (tests: local credentials, timeouts). */
  awsOverrides?: Partial<AwsConfig>;
  /** Output lines without an output stream, and dead letters without a dead-letter stream. Default: the process's. */
  stdout?: Writable;
  /** Logs (one JSON line per batch) and dead letters without a dead-letter stream. */
  stderr?: Writable;
  /**
   * CloudWatch Embedded Metric Format lines, one set per shard batch. Default: stdout inside
   * Lambda (where the log turns them into metrics), none elsewhere.
   */
  metrics?: Writable;
}

/** What a container builds once. */
export interface LambdaRuntime {
  config: LambdaConfig;
  processor: ShardBatchProcessor;
  store: ShardStateStore<ShardPipeline>;
  log: ServiceLogger;
  /** Where the CloudWatch Embedded Metric Format lines go (the function's log), if anywhere. */
  metrics: Writable | undefined;
  close(): void;
}

export async function createRuntime(options: LambdaRuntimeOptions = {}): Promise<LambdaRuntime> {
  const config = await loadLambdaConfig(options.env ?? process.env);
  const stderr = options.stderr ?? process.stderr;
  const log = createLogger(stderr, config.service.logLevel, true);
  const aws: AwsConfig = { ...config.aws, ...options.awsOverrides };
  if (options.awsOverrides?.endpoints !== undefined) aws.endpoints = { ...config.aws.endpoints, ...options.awsOverrides.endpoints };
  const detect = config.service.detect;
  // The kernel compiles here, once per container; every shard's forests share it.
  if ((detect.forest.engine ?? 'wasm') === 'wasm') await loadKernel();
  const kinesis = createKinesisClient(aws);
  const sns = config.service.snsTopicArn !== undefined ? createSnsClient(aws) : undefined;
  const s3 = createS3Client(aws);
  const store = new ShardStateStore<ShardPipeline>({ client: s3, location: config.state });
  const processor = new ShardBatchProcessor({ config: config.service, store, kinesis, sns, stdout: options.stdout ?? process.stdout, stderr, log });
  return {
    config,
    processor,
    store,
    log,
    metrics: options.metrics ?? (process.env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined ? process.stdout : undefined),
    close: () => {
      store.close();
      kinesis.destroy();
      sns?.destroy();
      s3.destroy();
    },
  };
}

/** `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` -> NAME. */
function streamName(arn: string): string {
  const at = arn.lastIndexOf(':stream/');
  return at >= 0 ? arn.slice(at + ':stream/'.length) : arn;
}

/** The event's records as source records, KPL aggregates split (as KinesisSource does). */
function sourceRecords(shardId: string, r: KinesisStreamRecord): SourceRecord[] {
  const k = r.kinesis;
  const data = Buffer.from(k.data, 'base64');
  const base: SourceRecord = { shardId, sequenceNumber: k.sequenceNumber, partitionKey: k.partitionKey, data };
  if (Number.isFinite(k.approximateArrivalTimestamp)) base.arrivalTime = new Date(k.approximateArrivalTimestamp * 1000);
  if (!isAggregated(data)) return [base];
  try {
    return deaggregate(data).map((u, i) => {
      const s: SourceRecord = { ...base, subSequence: i, partitionKey: u.partitionKey, data: u.data };
      if (u.explicitHashKey !== undefined) s.explicitHashKey = u.explicitHashKey;
      return s;
    });
  } catch (error) {
    // As KinesisSource does: passed on as is, carrying the KPL error (the pipeline dead-letters it with it).
    base.deaggregationError = errorMessage(error);
    return [base];
  }
}

interface ShardGroup {
  stream: string;
  shardId: string;
  records: SourceRecord[];
}

function groupByShard(event: KinesisStreamEvent): ShardGroup[] {
  const groups = new Map<string, ShardGroup>();
  for (const r of event.Records ?? []) {
    const colon = r.eventID.indexOf(':');
    const shardId = colon > 0 ? r.eventID.slice(0, colon) : r.eventID;
    const stream = streamName(r.eventSourceARN);
    const key = `${stream}/${shardId}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { stream, shardId, records: [] }));
    g.records.push(...sourceRecords(shardId, r));
  }
  return [...groups.values()];
}

/**
 * The batch's counters as CloudWatch EMF lines (metrics from the log, no PutMetricData call),
 * per function and stream: what this invocation did, so CloudWatch's sums are totals.
 */
function writeMetrics(rt: LambdaRuntime, g: ShardGroup, result: ShardBatchResult): void {
  if (rt.metrics === undefined) return;
  const s = result.stats;
  const dimensions = { FunctionName: process.env['AWS_LAMBDA_FUNCTION_NAME'] ?? 'rcf-stream', Stream: g.stream };
  const lines = emfLines(
    { recordsRead: s.records, recordsScored: s.scored, anomalies: s.anomalies, badRecords: s.deadLetters, outputRecords: s.outputs, sns: { published: s.notifications, suppressed: 0, dropped: 0, failed: 0, summariesQueued: 0 } },
    { timestamp: Date.now(), dimensions },
  );
  for (const l of lines) rt.metrics.write(`${l}\n`);
}

/** A handler over its own runtime, built on the first invocation. */
export function createHandler(options: LambdaRuntimeOptions = {}): {
  (event: KinesisStreamEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<KinesisStreamBatchResponse>;
  runtime(): Promise<LambdaRuntime>;
} {
  let runtime: Promise<LambdaRuntime> | undefined;
  const get = (): Promise<LambdaRuntime> => {
    runtime ??= createRuntime(options).catch((error: unknown) => {
      runtime = undefined;
      throw error;
    });
    return runtime;
  };
  const handle = async (event: KinesisStreamEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<KinesisStreamBatchResponse> => {
    const rt = await get();
    // Keep a margin to commit what was delivered before the function times out.
    const left = context?.getRemainingTimeInMillis?.();
    const deadline = left === undefined ? undefined : Date.now() + Math.max(1_000, left - 5_000);
    const batchItemFailures: KinesisStreamBatchResponse['batchItemFailures'] = [];
    for (const g of groupByShard(event)) {
      const result: ShardBatchResult = await rt.processor.process({ ...g, ...(deadline !== undefined ? { deadline } : {}) });
      if (result.failedAt !== undefined) batchItemFailures.push({ itemIdentifier: result.failedAt });
      rt.log.info('batch', { stream: g.stream, shard: g.shardId, failedAt: result.failedAt, reason: result.reason, ...result.stats });
      writeMetrics(rt, g, result);
    }
    return { batchItemFailures };
  };
  return Object.assign(handle, { runtime: get });
}

/** The handler Lambda calls: configured from the function's environment. */
export const handler = createHandler();

// In a Lambda container, build the runtime (config, clients, WASM) during the init phase.
if (process.env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined) {
  handler.runtime().catch((error: unknown) => process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'rcf-stream lambda: setup failed', error: errorMessage(error) })}\n`));
}
