/**
 * Notifications as text lines (`Anomaly detected: Time=..., Value=..., Score=...`) on a
 * stream such as stdout: the local stand-in for SNS (demo, `--notify stdout`). deliver()
 * resolves once the stream took the batch's lines (after a drain when its buffer is
 * full); a closed reader (EPIPE, `| head`) is not an error: `stopped` tells the caller
 * to stop reading.
 */
import type { OutputSink } from '../io/output.js';
import type { ScoredBatch, Sink } from './contracts.js';
import { SinkError } from './sinks.js';

export class TextNotificationSink implements Sink {
  readonly name = 'notifications';
  delivered = 0;
  constructor(
    readonly out: OutputSink,
    /** Called before the lines are written (e.g. to clear a progress line on the same terminal). */
    readonly beforeWrite?: () => void,
  ) {}

  get stopped(): boolean {
    return this.out.stopped;
  }

  async deliver(batch: ScoredBatch): Promise<void> {
    if (batch.notifications.length === 0) return;
    let text = '';
    for (const n of batch.notifications) text += `${n.message}\n`;
    this.beforeWrite?.();
    this.out.write(text);
    if (this.out.needsDrain) await this.out.drain();
    if (this.out.error !== undefined) throw new SinkError(this.name, this.out.error.message);
    this.delivered += batch.notifications.length;
  }

  close(): Promise<void> {
    return this.out.finish();
  }
}
