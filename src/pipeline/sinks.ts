/**
 * The pipeline's sinks: each takes its part of a ScoredBatch and resolves only once the
 * destination accepted it (see Sink in contracts.ts).
 *
 *   KinesisOutputSink      output records -> a Kinesis stream (PutRecords, retried)
 *   StreamOutputSink       output records -> stdout or a file, one NDJSON line each
 *   DeadLetterFileSink     dead letters   -> an NDJSON file, flushed before acknowledging
 *   DeadLetterStreamSink   dead letters   -> a Kinesis stream, with the original record
 *   NotificationSink       notifications  -> SNS, acknowledged per message (at least once)
 */
import type { Writable } from 'node:stream';
import type { KinesisSink, SinkEntry } from '../aws/kinesis-sink.js';
import type { NotifyOutcome, SnsNotifier } from '../aws/sns-notifier.js';
import { DeadLetterWriter, type DeadLetter } from '../io/dead-letter.js';
import type { OutputSink } from '../io/output.js';
import { MAX_KINESIS_RECORD_BYTES } from './batch-processor.js';
import type { PipelineRecord, ScoredBatch, Sink } from './contracts.js';
import { RcfStreamError } from '../util/errors.js';

/** A sink failed for good: the pipeline stops without committing the batch. */
export class SinkError extends RcfStreamError {
  override readonly name = 'SinkError';
  readonly code = 'SINK_FAILED';
  constructor(
    readonly sink: string,
    message: string,
  ) {
    super(`${sink}: ${message}`);
  }
}

/** One part of each batch -> a Kinesis stream (PutRecords, retried by KinesisSink); acknowledged once all of it is in. */
abstract class KinesisStreamSink implements Sink {
  abstract readonly name: string;
  delivered = 0;
  constructor(readonly sink: KinesisSink) {}

  protected abstract entries(batch: ScoredBatch): SinkEntry[];

  async deliver(batch: ScoredBatch): Promise<void> {
    const entries = this.entries(batch);
    if (entries.length === 0) return;
    await this.sink.put(entries);
    this.delivered += entries.length;
  }

  async close(): Promise<void> {}
}

export class KinesisOutputSink extends KinesisStreamSink {
  readonly name = 'output stream';
  protected entries(batch: ScoredBatch): SinkEntry[] {
    return batch.outputs.map((o) => ({ data: o.data, partitionKey: o.partitionKey }));
  }
}

export class StreamOutputSink implements Sink {
  readonly name = 'stdout';
  delivered = 0;
  constructor(readonly out: OutputSink) {}

  /** The reader went away (`| head`) or writing failed: nothing more is written. */
  get stopped(): boolean {
    return this.out.stopped;
  }

  async deliver(batch: ScoredBatch): Promise<void> {
    if (batch.lines !== undefined) {
      // Already NDJSON lines, in one buffer (BatchProcessor output 'lines').
      if (batch.lines.count === 0) return;
      this.out.write(batch.lines.data);
    } else {
      if (batch.outputs.length === 0) return;
      const newline = Buffer.from('\n');
      const parts: Buffer[] = [];
      for (const o of batch.outputs) parts.push(o.data, newline);
      this.out.write(Buffer.concat(parts));
    }
    if (this.out.needsDrain) await this.out.drain();
    if (this.out.error !== undefined) throw new SinkError(this.name, this.out.error.message);
    this.delivered += batch.lines?.count ?? batch.outputs.length;
  }

  close(): Promise<void> {
    return this.out.finish();
  }
}

export class DeadLetterFileSink implements Sink {
  readonly name = 'dead-letter file';
  delivered = 0;
  constructor(
    readonly writer: DeadLetterWriter,
    /** The writer's stream (a file, or a shared log stream such as the Lambda's stderr). */
    readonly stream: Writable,
  ) {}

  async deliver(batch: ScoredBatch): Promise<void> {
    if (batch.deadLetters.length === 0) return;
    for (const { letter } of batch.deadLetters) this.writer.write(letter);
    // The position may advance only once the entries reached the file.
    await new Promise<void>((resolve, reject) => this.stream.write('', (e) => (e ? reject(e) : resolve())));
    this.delivered += batch.deadLetters.length;
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

export class DeadLetterStreamSink extends KinesisStreamSink {
  readonly name = 'dead-letter stream';
  protected entries(batch: ScoredBatch): SinkEntry[] {
    return batch.deadLetters.map(({ letter, record }) => deadLetterEntry(letter, record));
  }
}

/** A dead letter on the dead-letter stream: the reason and the original record, under its own partition key. */
export function deadLetterEntry(letter: DeadLetter, r: PipelineRecord): SinkEntry {
  const body: Record<string, unknown> = { recordId: letter.source, reason: letter.reason, kind: letter.kind, partitionKey: r.partitionKey };
  if (r.arrivalTime !== undefined) body['arrivalTime'] = r.arrivalTime.toISOString();
  if (typeof letter.input === 'string') body['input'] = letter.input;
  else body['inputBase64'] = Buffer.from(r.data).toString('base64');
  let data = Buffer.from(JSON.stringify(body), 'utf8');
  if (data.byteLength > MAX_KINESIS_RECORD_BYTES - 512) {
    // The original was up to 1 MiB already; keep the reason and a locator rather than fail.
    delete body['input'];
    delete body['inputBase64'];
    body['truncated'] = true;
    data = Buffer.from(JSON.stringify(body), 'utf8');
  }
  return { data, partitionKey: r.partitionKey !== '' ? r.partitionKey : (letter.source ?? 'dead-letter') };
}

/**
 * Notifications, at least once: deliver() resolves when SNS accepted every notification
 * of the batch (or its rate limit folded it into the window's summary), so a position
 * never moves past an anomaly whose notification could still be lost.
 */
export class NotificationSink implements Sink {
  readonly name = 'SNS';
  readonly outcomes: Record<NotifyOutcome, number> = { queued: 0, suppressed: 0, dropped: 0 };
  constructor(readonly notifier: SnsNotifier) {}

  async deliver(batch: ScoredBatch): Promise<void> {
    if (batch.notifications.length === 0) return;
    const pending: Promise<boolean>[] = [];
    for (const n of batch.notifications) {
      const { outcome, accepted } = this.notifier.notifyAcknowledged(n);
      this.outcomes[outcome]++;
      pending.push(accepted);
    }
    const accepted = await Promise.all(pending);
    const lost = accepted.filter((ok) => !ok).length;
    if (lost > 0) throw new SinkError(this.name, `${lost} notification(s) not accepted; their records stay unacknowledged and are read again after a restart`);
  }

  async close(timeoutMs = 5_000): Promise<void> {
    await this.notifier.close(timeoutMs);
  }
}

/** Delivers the batch to every sink, one after another; resolves once all acknowledged. */
export async function deliverAll(sinks: readonly Sink[], batch: ScoredBatch): Promise<void> {
  for (const sink of sinks) await sink.deliver(batch);
}
