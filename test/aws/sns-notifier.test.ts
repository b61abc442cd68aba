import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createSnsClient } from '../../src/aws/clients.js';
import { SnsNotifier } from '../../src/aws/sns-notifier.js';
import { receiveAll, topicWithQueue } from '../support/sns-sqs.js';
import { freePort, localAwsConfig, motoServerUnavailableReason, startMotoServer, waitFor, type LocalServer } from '../support/local-aws.js';

const skipReason = motoServerUnavailableReason();
if (skipReason) console.warn(`[skip] SNS integration tests: ${skipReason}`);

let moto: LocalServer | undefined;
let sns: SNSClient;
let sqs: SQSClient;

beforeAll(async () => {
  if (skipReason) return;
  moto = await startMotoServer();
  sns = createSnsClient(localAwsConfig({ sns: moto.endpoint }));
  sqs = new SQSClient({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestHandler: new NodeHttpHandler(),
  });
});

afterAll(async () => {
  sns?.destroy();
  sqs?.destroy();
  await moto?.stop();
});

describe.skipIf(skipReason !== undefined)('SnsNotifier (moto_server)', () => {
  it('publishes the message with subject and typed message attributes', async () => {
    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'anomalies');
    const notifier = new SnsNotifier({ client: sns, topicArn });
    const message = 'Anomaly detected: Time=2024-01-01T00:00:00Z, Value=42.500000, Score=3.250000';
    expect(notifier.notify({ message, subject: 'Anomaly\nin stream', attributes: { Score: 3.25, Value: 42.5, Time: '2024-01-01T00:00:00Z', Stream: 'in' } })).toBe('queued');
    expect(await notifier.flush(5_000)).toBe(true);
    const [got] = await receiveAll(sqs, queueUrl, 1);
    expect(got!.Message).toBe(message);
    expect(got!.Subject).toBe('Anomaly in stream');
    expect(got!.MessageAttributes).toEqual({
      Score: { Type: 'Number', Value: '3.25' },
      Value: { Type: 'Number', Value: '42.5' },
      Time: { Type: 'String', Value: '2024-01-01T00:00:00Z' },
      Stream: { Type: 'String', Value: 'in' },
    });
    await notifier.close();
    expect(notifier.stats()).toMatchObject({ published: 1, suppressed: 0, dropped: 0, failed: 0, queued: 0 });
  });

  it('publishes text with lone surrogates as well-formed text instead of losing it (URIError)', async () => {
    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'surrogates');
    const notifier = new SnsNotifier({ client: sns, topicArn });
    notifier.notify({ message: 'Anomaly detected: Time=x\ud800y, Value=1.000000, Score=4.000000', attributes: { Score: 4, Key: 'k\udc00' } });
    expect(await notifier.flush(5_000)).toBe(true);
    const [got] = await receiveAll(sqs, queueUrl, 1);
    expect(got!.Message).toBe('Anomaly detected: Time=x\ufffdy, Value=1.000000, Score=4.000000');
    expect(got!.MessageAttributes!['Key']).toEqual({ Type: 'String', Value: 'k\ufffd' });
    await notifier.close();
    expect(notifier.stats()).toMatchObject({ published: 1, failed: 0, dropped: 0 });
  });

  it('rate-limits and sends one summary per window for the suppressed notifications (injected clock and timer)', async () => {
    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'ratelimited');
    let now = 0;
    const timers: { due: number; fire: () => void }[] = [];
    const notifier = new SnsNotifier({
      client: sns,
      topicArn,
      ratePerWindow: 3,
      windowMs: 1_500,
      now: () => now,
      setTimer: (fire, ms) => {
        const t = { due: now + ms, fire };
        timers.push(t);
        return () => timers.splice(timers.indexOf(t), 1);
      },
    });
    const outcomes = Array.from({ length: 10 }, (_, i) =>
      notifier.notify({ message: `Anomaly detected: Time=t${i}, Value=1.000000, Score=${i}.000000`, attributes: { Score: i } }),
    );
    expect(outcomes).toEqual(['queued', 'queued', 'queued', ...Array<string>(7).fill('suppressed')]);
    // One window timer for all seven suppressions, due at the end of the window.
    expect(timers.map((t) => t.due)).toEqual([1_500]);
    // Half a window refills half the bucket: 1.5 tokens, so one more goes through and the next is suppressed.
    now = 750;
    expect(notifier.notify({ message: 'Anomaly detected: Time=t10, Value=1.000000, Score=10.000000', attributes: { Score: 10 } })).toBe('queued');
    expect(notifier.notify({ message: 'Anomaly detected: Time=t11, Value=1.000000, Score=0.500000', attributes: { Score: 0.5 } })).toBe('suppressed');
    expect(timers).toHaveLength(1);
    expect(notifier.stats().summariesQueued).toBe(0);
    now = 1_500;
    timers.shift()!.fire();
    expect(notifier.stats().summariesQueued).toBe(1);
    const msgs = await receiveAll(sqs, queueUrl, 5, 10_000);
    const summary = msgs.find((m) => m.MessageAttributes?.['Type']?.Value === 'suppression-summary')!;
    expect(summary.Message).toBe('8 further anomalies suppressed in the last 1.5 s; highest score 9.000000');
    expect(summary.MessageAttributes!['SuppressedCount']).toEqual({ Type: 'Number', Value: '8' });
    expect(msgs.filter((m) => m.Message.startsWith('Anomaly detected')).map((m) => m.Message)).toHaveLength(4);
    await notifier.close();
    expect(timers).toHaveLength(0);
    expect(notifier.stats()).toMatchObject({ published: 5, suppressed: 8, summariesQueued: 1, dropped: 0 });
  });

  it('summary wording for the default one-minute window, sent on close', async () => {
    const { topicArn, queueUrl } = await topicWithQueue(sns, sqs, 'closing');
    const notifier = new SnsNotifier({ client: sns, topicArn, ratePerWindow: 1 });
    notifier.notify({ message: 'first', score: 1 });
    notifier.notify({ message: 'second', score: 5.5 });
    notifier.notify({ message: 'third', score: 2 });
    await notifier.close(5_000);
    const msgs = await receiveAll(sqs, queueUrl, 2);
    expect(msgs.map((m) => m.Message).sort()).toEqual(['2 further anomalies suppressed in the last minute; highest score 5.500000', 'first']);
  });
});

describe('SnsNotifier during an SNS outage', () => {
  it('never stalls the caller: notify returns at once, overflow is dropped and counted', async () => {
    const closedPort = await freePort(); // nothing listens here
    const client = createSnsClient(localAwsConfig({ sns: `http://127.0.0.1:${closedPort}` }));
    const notifier = new SnsNotifier({
      client,
      topicArn: 'arn:aws:sns:us-east-1:123456789012:down',
      ratePerWindow: 1_000_000,
      maxQueue: 100,
      maxAttempts: 3,
      backoff: { baseDelayMs: 20, maxDelayMs: 50 },
    });
    // notify is synchronous: it returns an outcome, never a promise to wait on.
    const outcomes = Array.from({ length: 5_000 }, (_, i) => notifier.notify({ message: `anomaly ${i}`, attributes: { Score: i } }));
    expect(new Set(outcomes)).toEqual(new Set(['queued', 'dropped']));
    const st = notifier.stats();
    expect(st.queued).toBeLessThanOrEqual(101);
    expect(st.dropped).toBeGreaterThanOrEqual(5_000 - 101);
    // The publisher keeps failing in the background, counted as failures after its retries.
    await waitFor(() => notifier.stats().failed >= 2, 5_000, 'failed publishes');
    expect(notifier.stats().retries).toBeGreaterThanOrEqual(4);
    // close gives up on SNS after its timeout (the test's own timeout would catch a hang).
    await notifier.close(200);
    const end = notifier.stats();
    expect(end.queued).toBe(0);
    expect(end.published).toBe(0);
    expect(end.failed + end.dropped).toBe(5_000);
    expect(notifier.notify({ message: 'after close' })).toBe('dropped');
    client.destroy();
  });
});
