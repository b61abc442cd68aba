/**
 * The whole rcf-stream stack on AWS Lambda, as one CDK stack:
 *
 *   input stream --(event source mapping)--> function --> output stream
 *                                              |  |  +--> SNS topic (--> email)
 *                                              |  +-----> dead-letter stream
 *                                              +--------> state bucket (one object per shard)
 *   batches that exhaust their retries --> failed-batch queue (SQS)
 *
 * IAM is written out statement by statement (no grant helpers, no managed
 * policies): exactly the calls the handler and the mapping make, on these
 * resources. Environment-agnostic, so `cdk synth` needs no account.
 */
import { join } from 'node:path';
import {
  CfnCondition,
  CfnElement,
  CfnOutput,
  CfnParameter,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  Validations,
  type StackProps,
} from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Stream, StreamEncryption, StreamMode } from 'aws-cdk-lib/aws-kinesis';
import { Alias } from 'aws-cdk-lib/aws-kms';
import { Architecture, Code, EventSourceMapping, Function as LambdaFunction, Runtime, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { CfnSubscription, Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/** Object key prefix of the per-shard state (RCF_CHECKPOINT=s3:BUCKET/<this>). */
export const STATE_PREFIX = 'rcf-stream/state';

export interface RcfStreamStackProps extends StackProps {
  /** Directory holding the bundled handler (see bundle.ts). */
  codeDir: string;
  /** Shards of the input stream. Default 1. */
  inputShards?: number;
  /** Records per invocation (1..10000). Default 1000. */
  batchSize?: number;
  /** Longest wait to fill a batch. Default 5 s. */
  batchingWindow?: Duration;
  /** Retries of a failing batch before it goes to the failed-batch queue. Default 10000 (the most allowed). */
  maxRetryAttempts?: number;
  /** RCF_* settings for the function (detection and output options of `rcf-stream run`). */
  detection?: Record<string, string>;
  memoryMiB?: number;
  timeout?: Duration;
}

/** The reference walkthrough's pipeline: JSON {"time","value"}, threshold 3.0, only anomalies out. */
export const DEFAULT_DETECTION: Record<string, string> = {
  RCF_FIELDS: 'value',
  RCF_TIME_FIELD: 'time',
  RCF_THRESHOLD: '3.0',
  RCF_TREES: '50',
  RCF_SAMPLE_SIZE: '256',
  RCF_SHINGLE: '1',
  RCF_SEED: '0',
  RCF_EMIT: 'anomalies',
};

export class RcfStreamStack extends Stack {
  readonly function: LambdaFunction;
  readonly eventSourceMapping: EventSourceMapping;

  constructor(scope: Construct, id: string, props: RcfStreamStackProps) {
    super(scope, id, props);

    const email = new CfnParameter(this, 'NotificationEmail', {
      type: 'String',
      default: '',
      description: 'Email address that gets the anomaly notifications (confirm the subscription mail). Empty: no subscription.',
      allowedPattern: '^$|^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$',
      constraintDescription: 'must be empty or an email address',
    });

    const streamProps = { shardCount: undefined, streamMode: StreamMode.PROVISIONED, encryption: StreamEncryption.MANAGED, retentionPeriod: Duration.hours(24) };
    const input = new Stream(this, 'InputStream', { ...streamProps, shardCount: props.inputShards ?? 1 });
    const output = new Stream(this, 'OutputStream', { ...streamProps, shardCount: 1 });
    const deadLetters = new Stream(this, 'DeadLetterStream', { ...streamProps, shardCount: 1 });
    for (const s of [input, output, deadLetters]) s.applyRemovalPolicy(RemovalPolicy.DESTROY);

    const topic = new Topic(this, 'AnomalyTopic', {
      displayName: 'rcf-stream anomalies',
      // The AWS managed key: publishers in the account need no KMS permissions, email works.
      masterKey: Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    const hasEmail = new CfnCondition(this, 'HasNotificationEmail', { expression: Fn.conditionNot(Fn.conditionEquals(email.valueAsString, '')) });
    const subscription = new CfnSubscription(this, 'EmailSubscription', { topicArn: topic.topicArn, protocol: 'email', endpoint: email.valueAsString });
    subscription.cfnOptions.condition = hasEmail;

    const state = new Bucket(this, 'StateBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // The models are the product of the whole stream so far: kept when the stack goes.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const failedBatches = new Queue(this, 'FailedBatchQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    failedBatches.applyRemovalPolicy(RemovalPolicy.DESTROY);

    const logGroup = new LogGroup(this, 'FunctionLogs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });

    const stateObjects = `${state.bucketArn}/${STATE_PREFIX}/*`;
    const role = new Role(this, 'FunctionRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'rcf-stream Lambda: read the input stream, write results, publish anomalies, keep per-shard state',
      inlinePolicies: {
        'rcf-stream': new PolicyDocument({
          statements: [
            new PolicyStatement({
              sid: 'EventSourceMappingReadsInput',
              effect: Effect.ALLOW,
              actions: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:ListShards'],
              resources: [input.streamArn],
            }),
            new PolicyStatement({ sid: 'WriteResultsAndDeadLetters', effect: Effect.ALLOW, actions: ['kinesis:PutRecords'], resources: [output.streamArn, deadLetters.streamArn] }),
            new PolicyStatement({ sid: 'PublishAnomalies', effect: Effect.ALLOW, actions: ['sns:Publish'], resources: [topic.topicArn] }),
            new PolicyStatement({ sid: 'ShardState', effect: Effect.ALLOW, actions: ['s3:GetObject', 's3:PutObject'], resources: [stateObjects] }),
            new PolicyStatement({
              sid: 'ShardStateMissingReadsAsNotFound',
              effect: Effect.ALLOW,
              actions: ['s3:ListBucket'],
              resources: [state.bucketArn],
              conditions: { StringLike: { 's3:prefix': [`${STATE_PREFIX}/*`] } },
            }),
            new PolicyStatement({ sid: 'EventSourceMappingOnFailure', effect: Effect.ALLOW, actions: ['sqs:SendMessage'], resources: [failedBatches.queueArn] }),
            new PolicyStatement({ sid: 'Logs', effect: Effect.ALLOW, actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [`${logGroup.logGroupArn}:*`] }),
          ],
        }),
      },
    });

    const detection = { ...DEFAULT_DETECTION, ...props.detection };
    this.function = new LambdaFunction(this, 'Detector', {
      description: 'rcf-stream: Random Cut Forest anomaly detection per Kinesis shard',
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      handler: 'index.handler',
      code: Code.fromAsset(props.codeDir),
      memorySize: props.memoryMiB ?? 1024,
      timeout: props.timeout ?? Duration.minutes(2),
      role,
      logGroup,
      environment: {
        ...detection,
        RCF_OUTPUT_STREAM: output.streamName,
        RCF_DEAD_LETTER_STREAM: deadLetters.streamName,
        RCF_SNS_TOPIC_ARN: topic.topicArn,
        RCF_CHECKPOINT: Fn.join('', ['s3:', state.bucketName, `/${STATE_PREFIX}`]),
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    this.function.node.addDependency(role);

    this.eventSourceMapping = new EventSourceMapping(this, 'InputMapping', {
      target: this.function,
      eventSourceArn: input.streamArn,
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: props.batchSize ?? 1000,
      maxBatchingWindow: props.batchingWindow ?? Duration.seconds(5),
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: props.maxRetryAttempts ?? 10_000,
      parallelizationFactor: 1,
      onFailure: { bind: () => ({ destination: failedBatches.queueArn }) },
    });
    // The mapping validates its role's permissions when it is created.
    this.eventSourceMapping.node.addDependency(role);

    new Alarm(this, 'IteratorAgeAlarm', {
      alarmDescription: 'The function falls behind the input stream (oldest unprocessed record older than 5 minutes).',
      metric: this.function.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
      threshold: 5 * 60 * 1000,
      evaluationPeriods: 5,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    new Alarm(this, 'FunctionErrorsAlarm', {
      alarmDescription: 'Invocations failed (setup, crash or timeout); the mapping retries and bisects them.',
      metric: this.function.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    new Alarm(this, 'FailedBatchesAlarm', {
      alarmDescription: 'A batch exhausted its retries: its records were NOT scored (see the failed-batch queue).',
      metric: failedBatches.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(5) }),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    const out = (name: string, value: string, description: string): void => void new CfnOutput(this, name, { value, description });
    out('InputStreamName', input.streamName, 'send records here (rcf-stream generate --to-kinesis STREAM)');
    out('OutputStreamName', output.streamName, 'scored records (RCF_EMIT decides which)');
    out('DeadLetterStreamName', deadLetters.streamName, 'records that could not be scored, with the reason');
    out('TopicArn', topic.topicArn, 'anomaly notifications');
    out('StateBucketName', state.bucketName, `per-shard models under ${STATE_PREFIX}/ (kept on stack deletion)`);
    out('FunctionName', this.function.functionName, 'the detector function');
    out('LogGroupName', logGroup.logGroupName, 'one JSON line per batch');
    out('FailedBatchQueueUrl', failedBatches.queueUrl, 'batches that exhausted their retries');

    // cdk-nag (AwsSolutions) findings accepted on purpose, each with its reason.
    Validations.of(state).acknowledge({
      id: 'AwsSolutions::AwsSolutions-S1',
      reason: 'Only the function reads and writes the state objects; CloudTrail data events are the audit trail if wanted, and an access-log bucket would be a second bucket to manage for a few requests per batch.',
    });
    Validations.of(failedBatches).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SQS3',
      reason: "This queue IS the dead-letter destination (the event source mapping's on-failure destination); a queue behind it would hold nothing.",
    });
    const arnOf = (c: Construct): string => `<${this.getLogicalId(c.node.defaultChild as CfnElement)}.Arn>`;
    Validations.of(role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::${arnOf(state)}/${STATE_PREFIX}/*]`,
      reason: 'One state object per shard under the state prefix, named at run time from the shard id; the wildcard stays inside this bucket and prefix.',
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::${arnOf(logGroup)}:*]`,
      reason: "The log streams of the function's own log group (Lambda names them per container).",
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions::AwsSolutions-L1',
      reason: 'Node.js 22 is the newest runtime the package is built and tested for (engines: node >=20); the runtime moves when the test matrix does.',
    });
  }
}

/** Where app.ts bundles the handler. */
export function defaultCodeDir(root: string): string {
  return join(root, 'infra', 'build', 'handler');
}
