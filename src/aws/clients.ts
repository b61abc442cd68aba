/**
 * Factory for the AWS SDK v3 clients the service uses.
 *
 * Credentials and region come from the SDK's default provider chain (env,
 * shared config/SSO, web identity, container/instance metadata) unless the
 * config names them. Nothing here logs or returns secrets: `describeAwsConfig`
 * reports only where each client points.
 */
import { KinesisClient, type KinesisClientConfig } from '@aws-sdk/client-kinesis';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export type AwsCredentials = KinesisClientConfig['credentials'];

export interface AwsEndpoints {
  kinesis?: string;
  sns?: string;
  dynamodb?: string;
  s3?: string;
}

export interface AwsConfig {
  /** Region; default: the SDK chain (AWS_REGION, profile). `us-east-1` when only local endpoints are used. */
  region?: string;
  /** Endpoint overrides, e.g. local servers (`http://127.0.0.1:4567`). */
  endpoints?: AwsEndpoints;
  /**
   * Use an HTTP/1.1 handler (`NodeHttpHandler`) for every client. The Kinesis
   * client otherwise defaults to HTTP/2, which kinesalite does not speak.
   * Default: true when a Kinesis endpoint override is given, else false.
   */
  http1?: boolean;
  /**
   * SDK-level attempts for DynamoDB and S3 (the checkpoint stores), default 3
   * (the SDK's). Kinesis and SNS clients are built with 1 unless
   * `sdkRetriesForStreams` is set, because KinesisSource, KinesisSink and
   * SnsNotifier retry themselves with counted, interruptible backoff.
   */
  maxAttempts?: number;
  /** Let the SDK retry Kinesis/SNS calls too (attempts), on top of the classes' own retries. */
  sdkRetriesForStreams?: number;
  /** Abandon connecting after this long. Default 5000 ms, so a black-holed endpoint cannot hang a call. */
  connectionTimeoutMs?: number;
  /** Abandon a request after this long. Default 30000 ms. */
  requestTimeoutMs?: number;
  /** Explicit credentials (local servers take any); default: the SDK's provider chain. */
  credentials?: AwsCredentials;
}

type Service = keyof AwsEndpoints;

interface CommonClientConfig {
  region?: string;
  endpoint?: string;
  maxAttempts?: number;
  credentials?: AwsCredentials;
  requestHandler: NodeHttpHandler | { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: boolean };
}

function usesHttp1(cfg: AwsConfig): boolean {
  return cfg.http1 ?? cfg.endpoints?.kinesis !== undefined;
}

function hasAnyEndpoint(cfg: AwsConfig): boolean {
  return Object.values(cfg.endpoints ?? {}).some((e) => e !== undefined);
}

function commonConfig(cfg: AwsConfig, service: Service, maxAttempts: number | undefined): CommonClientConfig {
  const timeouts = {
    connectionTimeout: cfg.connectionTimeoutMs ?? 5_000,
    requestTimeout: cfg.requestTimeoutMs ?? 30_000,
    // Without this the SDK only warns when requestTimeout passes and keeps waiting.
    throwOnRequestTimeout: true,
  };
  const out: CommonClientConfig = {
    // A plain options object lets each client build its default handler (HTTP/2 for Kinesis).
    requestHandler: usesHttp1(cfg) ? new NodeHttpHandler(timeouts) : timeouts,
  };
  const region = cfg.region ?? (hasAnyEndpoint(cfg) && !process.env['AWS_REGION'] && !process.env['AWS_DEFAULT_REGION'] ? 'us-east-1' : undefined);
  if (region !== undefined) out.region = region;
  const endpoint = cfg.endpoints?.[service];
  if (endpoint !== undefined) out.endpoint = endpoint;
  if (maxAttempts !== undefined) out.maxAttempts = maxAttempts;
  if (cfg.credentials !== undefined) out.credentials = cfg.credentials;
  return out;
}

/** Kinesis client; SDK retries off by default (KinesisSource/KinesisSink retry themselves). */
export function createKinesisClient(cfg: AwsConfig = {}): KinesisClient {
  return new KinesisClient(commonConfig(cfg, 'kinesis', cfg.sdkRetriesForStreams ?? 1));
}

/** SNS client; SDK retries off by default (SnsNotifier retries itself). */
export function createSnsClient(cfg: AwsConfig = {}): SNSClient {
  return new SNSClient(commonConfig(cfg, 'sns', cfg.sdkRetriesForStreams ?? 1));
}

export function createDynamoDbClient(cfg: AwsConfig = {}): DynamoDBClient {
  return new DynamoDBClient(commonConfig(cfg, 'dynamodb', cfg.maxAttempts));
}

export function createS3Client(cfg: AwsConfig = {}): S3Client {
  const endpoint = cfg.endpoints?.s3;
  // Local S3 servers have no per-bucket DNS names, so buckets go in the path.
  return new S3Client({ ...commonConfig(cfg, 's3', cfg.maxAttempts), forcePathStyle: endpoint !== undefined });
}

/** One-line description for startup logs: region and endpoints only, never credentials. */
export function describeAwsConfig(cfg: AwsConfig): string {
  const parts = [`region=${cfg.region ?? '(default chain)'}`];
  for (const [svc, url] of Object.entries(cfg.endpoints ?? {})) {
    if (url !== undefined) parts.push(`${svc}=${redactUrl(url)}`);
  }
  parts.push(`http=${usesHttp1(cfg) ? '1.1' : 'default'}`);
  parts.push(`credentials=${cfg.credentials !== undefined ? 'explicit' : 'default chain'}`);
  return parts.join(' ');
}

/**
 * An endpoint URL fit for logs: user name and password (`http://user:pw@host`)
 * become `***`, and so do query parameter values (pre-signed tokens). Text
 * that is not a URL is returned with anything before an `@` masked.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url.replace(/^([^/]*\/\/)?[^@/]*@/, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
  }
  if (u.username !== '' || u.password !== '') {
    u.username = '***';
    u.password = '';
  }
  for (const key of [...u.searchParams.keys()]) u.searchParams.set(key, '***');
  return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
}
