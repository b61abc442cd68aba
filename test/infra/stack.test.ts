/**
 * The CDK stack (infra/stack.ts): the resources and properties the Lambda
 * deployment depends on, the function role's exact IAM statements, and the
 * cdk-nag AwsSolutions pack (no open finding; every acknowledgement has a reason).
 * Synthesis runs offline: environment-agnostic stack, handler bundled by esbuild.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { bundleHandler } from '../../infra/bundle.js';
import { RcfStreamStack, STATE_PREFIX } from '../../infra/stack.js';
import { requireBuilt } from '../cli/cli-support.js';

interface ValidationReport {
  pluginReports: { pluginName: string; conclusion: string; violations: { ruleName: string }[]; suppressedViolations: { ruleName: string; reason: string }[] }[];
}

let dir: string;
let codeDir: string;
let stack: RcfStreamStack;
let template: Template;
let report: ValidationReport;

/** Synthesises `app` with cdk-nag attached and returns the validation report. */
function synthWithNag(app: App, outdir: string): ValidationReport {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  try {
    app.synth();
  } catch {
    // A failing validation may throw; the report says why.
  }
  return JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
}

beforeAll(() => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'rcf-infra-'));
  codeDir = bundleHandler(join(dir, 'handler'));
  const outdir = join(dir, 'cdk.out');
  const app = new App({ outdir });
  stack = new RcfStreamStack(app, 'RcfStream', { codeDir, inputShards: 2 });
  report = synthWithNag(app, outdir);
  template = Template.fromStack(stack);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const id = (c: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(c.node.defaultChild as CfnElement);
const logicalIdOf = (type: string): string => {
  const ids = Object.keys(template.findResources(type));
  expect(ids.length, type).toBe(1);
  return ids[0]!;
};
/** Logical id of the stack's construct `name`. */
const child = (name: string): string => stack.getLogicalId(stack.node.findChild(name).node.defaultChild as CfnElement);
const arn = (logicalId: string): unknown => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

describe('CDK stack', () => {
  it('bundles the handler with the WASM kernel beside it', () => {
    expect(existsSync(join(codeDir, 'index.mjs'))).toBe(true);
    expect(readFileSync(join(codeDir, 'build', 'rcf.wasm')).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
  });

  it('has the streams, topic, bucket, queue, function, mapping and alarms, and nothing else', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values(template.toJSON().Resources as Record<string, { Type: string }>)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    expect(counts).toEqual({
      'AWS::Kinesis::Stream': 3,
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SNS::Subscription': 1,
      'AWS::S3::Bucket': 1,
      'AWS::S3::BucketPolicy': 1,
      'AWS::SQS::Queue': 1,
      'AWS::SQS::QueuePolicy': 1,
      'AWS::Logs::LogGroup': 1,
      'AWS::IAM::Role': 1,
      'AWS::Lambda::Function': 1,
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::CloudWatch::Alarm': 3,
    });
  });

  it('maps the input stream with partial batch responses, bisection, retries, an on-failure queue and one batch per shard at a time', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(child('InputStream')),
      FunctionName: { Ref: id(stack.function) },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10000,
      ParallelizationFactor: 1,
      DestinationConfig: { OnFailure: { Destination: arn(logicalIdOf('AWS::SQS::Queue')) } },
    });
    template.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 2, StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' } });
  });

  it('runs the bundled handler on Node.js 22, arm64, configured with run\'s RCF_* variables', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      Environment: {
        Variables: Match.objectLike({
          RCF_FIELDS: 'value',
          RCF_TIME_FIELD: 'time',
          RCF_THRESHOLD: '3.0',
          RCF_EMIT: 'anomalies',
          RCF_OUTPUT_STREAM: { Ref: child('OutputStream') },
          RCF_DEAD_LETTER_STREAM: { Ref: child('DeadLetterStream') },
          RCF_SNS_TOPIC_ARN: { Ref: logicalIdOf('AWS::SNS::Topic') },
          RCF_CHECKPOINT: { 'Fn::Join': ['', ['s3:', { Ref: logicalIdOf('AWS::S3::Bucket') }, `/${STATE_PREFIX}`]] },
        }),
      },
    });
  });

  it('keeps state in an encrypted, private, TLS-only bucket that survives the stack', () => {
    const bucket = logicalIdOf('AWS::S3::Bucket');
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('subscribes the email parameter only when it is given', () => {
    template.hasParameter('NotificationEmail', { Type: 'String', Default: '' });
    template.hasCondition('HasNotificationEmail', { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'NotificationEmail' }, ''] }] });
    template.hasResource('AWS::SNS::Subscription', { Condition: 'HasNotificationEmail', Properties: { Protocol: 'email', Endpoint: { Ref: 'NotificationEmail' } } });
  });

  it('gives the function exactly the calls the handler and the mapping make, on these resources', () => {
    const roles = template.findResources('AWS::IAM::Role');
    const role = Object.values(roles)[0] as { Properties: { Policies: { PolicyDocument: { Statement: unknown[] } }[]; ManagedPolicyArns?: unknown } };
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies.length).toBe(1);
    expect(Object.keys(template.findResources('AWS::IAM::Policy'))).toEqual([]);
    const input = child('InputStream');
    const output = child('OutputStream');
    const dlq = child('DeadLetterStream');
    const bucket = logicalIdOf('AWS::S3::Bucket');
    expect(role.Properties.Policies[0]!.PolicyDocument.Statement).toEqual([
      {
        Sid: 'EventSourceMappingReadsInput',
        Effect: 'Allow',
        Action: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:ListShards'],
        Resource: arn(input),
      },
      { Sid: 'WriteResultsAndDeadLetters', Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: [arn(output), arn(dlq)] },
      { Sid: 'PublishAnomalies', Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: logicalIdOf('AWS::SNS::Topic') } },
      { Sid: 'ShardState', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: { 'Fn::Join': ['', [arn(bucket), `/${STATE_PREFIX}/*`]] } },
      {
        Sid: 'ShardStateMissingReadsAsNotFound',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: arn(bucket),
        Condition: { StringLike: { 's3:prefix': [`${STATE_PREFIX}/*`] } },
      },
      { Sid: 'EventSourceMappingOnFailure', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: arn(logicalIdOf('AWS::SQS::Queue')) },
      { Sid: 'Logs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::Join': ['', [arn(logicalIdOf('AWS::Logs::LogGroup')), ':*']] } },
    ]);
  });

  it('alarms on iterator age, function errors and batches that ran out of retries', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'IteratorAge', Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: 300000 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Namespace: 'AWS/Lambda', Statistic: 'Sum', Threshold: 0 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateNumberOfMessagesVisible', Namespace: 'AWS/SQS', Threshold: 0 });
  });

  it('outputs what a user needs to send data and watch results', () => {
    for (const name of ['InputStreamName', 'OutputStreamName', 'DeadLetterStreamName', 'TopicArn', 'StateBucketName', 'FunctionName', 'LogGroupName', 'FailedBatchQueueUrl']) {
      template.hasOutput(name, {});
    }
  });

  it('passes cdk-nag AwsSolutions, every acknowledged finding carrying its reason', () => {
    const nag = report.pluginReports.find((p) => p.pluginName === 'AwsSolutions');
    expect(nag).toBeDefined();
    expect(nag!.violations.map((v) => v.ruleName)).toEqual([]);
    expect(nag!.conclusion).toBe('success');
    expect(nag!.suppressedViolations.map((v) => v.ruleName).sort()).toEqual(
      [
        'AwsSolutions-L1',
        'AwsSolutions-S1',
        'AwsSolutions-SQS3',
        `AwsSolutions-IAM5[Resource::<${logicalIdOf('AWS::Logs::LogGroup')}.Arn>:*]`,
        `AwsSolutions-IAM5[Resource::<${logicalIdOf('AWS::S3::Bucket')}.Arn>/${STATE_PREFIX}/*]`,
      ].sort(),
    );
    for (const s of nag!.suppressedViolations) expect(s.reason.length, s.ruleName).toBeGreaterThan(40);
  });

  it('would fail cdk-nag on a bucket without TLS enforcement (the check is live)', () => {
    const outdir = join(dir, 'bad.out');
    const app = new App({ outdir });
    new Bucket(new Stack(app, 'Bad'), 'Open', {});
    const bad = synthWithNag(app, outdir).pluginReports.find((p) => p.pluginName === 'AwsSolutions')!;
    expect(bad.conclusion).toBe('failure');
    expect(bad.violations.map((v) => v.ruleName)).toContain('AwsSolutions-S10');
  });
});
