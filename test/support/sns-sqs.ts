/**
 * Reading SNS notifications back in tests: a topic with an SQS queue subscribed (moto
 * delivers the SNS JSON envelope to the queue), and draining that queue.
 */
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { waitFor } from './local-aws.js';

/** The SNS envelope as it arrives in the queue. */
export interface Delivered {
  Message: string;
  Subject?: string;
  MessageAttributes?: Record<string, { Type: string; Value: string }>;
}

export async function topicWithQueue(sns: SNSClient, sqs: SQSClient, topic: string, queue = `${topic}-q`): Promise<{ topicArn: string; queueUrl: string }> {
  const topicArn = (await sns.send(new CreateTopicCommand({ Name: topic }))).TopicArn!;
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: queue }))).QueueUrl!;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!['QueueArn']!;
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
  return { topicArn, queueUrl };
}

/** Receives (and deletes) messages until `expected` have arrived; fails after the timeout. */
export async function receiveAll(sqs: SQSClient, queueUrl: string, expected: number, timeoutMs = 10_000): Promise<Delivered[]> {
  const out: Delivered[] = [];
  await waitFor(
    async () => {
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      for (const m of res.Messages ?? []) out.push(JSON.parse(m.Body!) as Delivered);
      if (res.Messages?.length) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: res.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
      return out.length >= expected;
    },
    timeoutMs,
    `${expected} SQS messages`,
  );
  return out;
}
