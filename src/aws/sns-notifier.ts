/**
 * SnsNotifier: publishes anomaly notifications to an SNS topic without ever
 * blocking the caller.
 *
 * `notify()` is synchronous: it rate-limits (token bucket, default 10 per
 * minute), then puts the message on a bounded queue (default 1000) that a
 * background publisher drains with retries. Over the rate, notifications are
 * suppressed and ONE summary per window reports how many and the highest
 * score. When SNS is down the queue fills and further notifications are
 * dropped and counted, so detection keeps its pace.
 *
 * `notifyAcknowledged()` is the at-least-once variant the pipeline uses: the
 * notification is queued whatever the queue's length (the caller's own
 * backpressure bounds it) and the returned promise says whether SNS accepted
 * it (true; also for a suppressed one, which the window's summary reports) or
 * it was given up (false: not retryable, out of attempts, or dropped at close).
 */
import { PublishCommand, type MessageAttributeValue, type SNSClient } from '@aws-sdk/client-sns';
import { wellFormedText } from './notification-text.js';
import { backoffDelay, classifyError, errorMessage, errorName, sleep, type BackoffOptions, type Logger } from './retry.js';

export interface Notification {
  message: string;
  subject?: string;
  /** Sent as SNS MessageAttributes: numbers as DataType Number, strings as String. */
  attributes?: Record<string, string | number>;
  /** Score for the suppression summary; default: a numeric `Score`/`score` attribute. */
  score?: number;
}

export interface SnsNotifierOptions {
  client: SNSClient;
  topicArn: string;
  /** Notifications waiting to be published; beyond it they are dropped. Default 1000. */
  maxQueue?: number;
  /** Notifications allowed per window (token bucket capacity and refill). Default 10. */
  ratePerWindow?: number;
  /** Default 60,000 ms. */
  windowMs?: number;
  /** Publish attempts per message, first included. Default 5. */
  maxAttempts?: number;
  /** Default base 200 ms, max 5 s. */
  backoff?: Partial<BackoffOptions>;
  /** Subject of suppression summaries. Default "Anomalies suppressed". */
  summarySubject?: string;
  logger?: Logger;
  random?: () => number;
  /** Clock (tests). */
  now?: () => number;
  /** One-shot timer for the end of a suppression window, returning its cancel function (tests). Default an unref'd setTimeout. */
  setTimer?: (callback: () => void, ms: number) => () => void;
}

const defaultTimer = (callback: () => void, ms: number): (() => void) => {
  const timer = setTimeout(callback, ms);
  timer.unref(); // a pending summary never keeps the process alive; close() sends it
  return () => clearTimeout(timer);
};

export interface SnsNotifierStats {
  published: number;
  /** Over the rate limit (reported in summaries). */
  suppressed: number;
  /** Queue full or closed. */
  dropped: number;
  /** Gave up after retries or a non-retryable error. */
  failed: number;
  retries: number;
  /** Waiting or being published now. */
  queued: number;
  summariesQueued: number;
}

export type NotifyOutcome = 'queued' | 'suppressed' | 'dropped';

interface QueuedMessage {
  message: string;
  subject?: string;
  attributes: Record<string, MessageAttributeValue>;
  /** Told whether SNS accepted the message (notifyAcknowledged). */
  settle?: (accepted: boolean) => void;
}

/** SNS message body limit (bytes, UTF-8). */
const MAX_MESSAGE_BYTES = 256 * 1024;
const ATTRIBUTE_NAME = /^(?!aws\.|amazon\.)(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$/i;

export class SnsNotifier {
  private readonly client: SNSClient;
  private readonly topicArn: string;
  private readonly maxQueue: number;
  private readonly rate: number;
  private readonly windowMs: number;
  private readonly maxAttempts: number;
  private readonly backoffOpts: BackoffOptions;
  private readonly summarySubject: string;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly now: () => number;

  private readonly queue: QueuedMessage[] = [];
  private inFlight = false;
  private tokens: number;
  private lastRefill: number;
  private suppressedInWindow = 0;
  private highestSuppressedScore: number | undefined;
  private cancelWindowTimer: (() => void) | undefined;
  private readonly setTimer: (callback: () => void, ms: number) => () => void;
  private closed = false;
  private readonly abort = new AbortController();
  private wakePublisher: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly loop: Promise<void>;
  private readonly counters = { published: 0, suppressed: 0, dropped: 0, failed: 0, retries: 0, summariesQueued: 0 };

  constructor(opts: SnsNotifierOptions) {
    this.client = opts.client;
    this.topicArn = opts.topicArn;
    this.maxQueue = Math.max(1, opts.maxQueue ?? 1000);
    this.rate = Math.max(1, opts.ratePerWindow ?? 10);
    this.windowMs = Math.max(1, opts.windowMs ?? 60_000);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    this.backoffOpts = { baseDelayMs: opts.backoff?.baseDelayMs ?? 200, maxDelayMs: opts.backoff?.maxDelayMs ?? 5_000 };
    this.summarySubject = opts.summarySubject ?? 'Anomalies suppressed';
    this.log = opts.logger ?? {};
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.setTimer = opts.setTimer ?? defaultTimer;
    this.tokens = this.rate;
    this.lastRefill = this.now();
    this.loop = this.publishLoop();
  }

  /** Never blocks and never throws for SNS trouble; returns what happened to the notification. */
  notify(n: Notification): NotifyOutcome {
    if (this.closed) {
      this.counters.dropped++;
      return 'dropped';
    }
    if (!this.takeToken()) {
      this.suppress(n);
      return 'suppressed';
    }
    return this.enqueue(this.prepare(n)) ? 'queued' : 'dropped';
  }

  /** Like notify(), and `accepted` resolves once SNS took it (true) or it was given up (false). */
  notifyAcknowledged(n: Notification): { outcome: NotifyOutcome; accepted: Promise<boolean> } {
    if (this.closed) {
      this.counters.dropped++;
      return { outcome: 'dropped', accepted: Promise.resolve(false) };
    }
    if (!this.takeToken()) {
      this.suppress(n);
      return { outcome: 'suppressed', accepted: Promise.resolve(true) };
    }
    const m = this.prepare(n);
    const accepted = new Promise<boolean>((resolve) => (m.settle = resolve));
    this.queue.push(m);
    this.wakePublisher?.();
    return { outcome: 'queued', accepted };
  }

  stats(): SnsNotifierStats {
    return { ...this.counters, queued: this.queue.length + (this.inFlight ? 1 : 0) };
  }

  /** Waits until everything queued was published (or failed). false if `timeoutMs` passed first. */
  async flush(timeoutMs = 5_000): Promise<boolean> {
    if (this.isIdle()) return true;
    let timer: NodeJS.Timeout | undefined;
    let resolveIdle!: () => void;
    const idle = new Promise<boolean>((resolve) => {
      resolveIdle = () => resolve(true);
      this.idleWaiters.push(resolveIdle);
    });
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const drained = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    this.idleWaiters = this.idleWaiters.filter((w) => w !== resolveIdle);
    return drained;
  }

  /**
   * Stops accepting notifications, queues the pending suppression summary,
   * publishes what it can within `timeoutMs`, and drops (counts) the rest.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return this.loop;
    this.emitSummary();
    this.closed = true;
    this.cancelWindowTimer?.();
    this.cancelWindowTimer = undefined;
    await this.flush(timeoutMs);
    this.counters.dropped += this.queue.length;
    for (const m of this.queue.splice(0)) m.settle?.(false);
    this.abort.abort();
    this.wakePublisher?.();
    await this.loop;
  }

  // --- rate limiting ----------------------------------------------------------

  private takeToken(): boolean {
    const now = this.now();
    const elapsed = Math.max(0, now - this.lastRefill);
    this.tokens = Math.min(this.rate, this.tokens + (elapsed * this.rate) / this.windowMs);
    this.lastRefill = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  private suppress(n: Notification): void {
    this.counters.suppressed++;
    this.suppressedInWindow++;
    const score = n.score ?? numeric(n.attributes?.['Score']) ?? numeric(n.attributes?.['score']);
    if (score !== undefined && (this.highestSuppressedScore === undefined || score > this.highestSuppressedScore)) {
      this.highestSuppressedScore = score;
    }
    // The first suppression opens a window; its end publishes one summary for all of it.
    if (this.cancelWindowTimer === undefined) {
      this.cancelWindowTimer = this.setTimer(() => {
        this.cancelWindowTimer = undefined;
        this.emitSummary();
      }, this.windowMs);
    }
  }

  private emitSummary(): void {
    const count = this.suppressedInWindow;
    if (count === 0) return;
    const highest = this.highestSuppressedScore;
    this.suppressedInWindow = 0;
    this.highestSuppressedScore = undefined;
    const period = this.windowMs === 60_000 ? 'the last minute' : `the last ${+(this.windowMs / 1000).toFixed(3)} s`;
    const message =
      `${count} further ${count === 1 ? 'anomaly' : 'anomalies'} suppressed in ${period}` +
      (highest !== undefined ? `; highest score ${highest.toFixed(6)}` : '');
    const attributes: Record<string, string | number> = { Type: 'suppression-summary', SuppressedCount: count };
    if (highest !== undefined) attributes['HighestScore'] = highest;
    this.counters.summariesQueued++;
    this.enqueue(this.prepare({ message, subject: this.summarySubject, attributes }));
  }

  // --- queue and publisher ------------------------------------------------------

  private prepare(n: Notification): QueuedMessage {
    const attributes: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(n.attributes ?? {})) {
      if (!ATTRIBUTE_NAME.test(name)) {
        this.log.warn?.('SNS message attribute dropped: invalid name', { name });
        continue;
      }
      if (typeof value === 'number' && Number.isFinite(value)) {
        attributes[name] = { DataType: 'Number', StringValue: String(value) };
      } else {
        // NaN/Infinity are not valid SNS Numbers; keep them readable as text.
        const text = wellFormedText(String(value));
        if (text === '') continue; // SNS rejects empty attribute values
        attributes[name] = { DataType: 'String', StringValue: text };
      }
    }
    // A lone surrogate cannot be URI-encoded: the SDK would throw URIError and the notification be lost.
    const q: QueuedMessage = { message: truncateUtf8(n.message === '' ? '(empty)' : wellFormedText(n.message), MAX_MESSAGE_BYTES), attributes };
    if (n.subject !== undefined) {
      const subject = sanitizeSubject(n.subject);
      if (subject !== '') q.subject = subject;
    }
    return q;
  }

  private enqueue(m: QueuedMessage): boolean {
    if (this.queue.length >= this.maxQueue) {
      this.counters.dropped++;
      return false;
    }
    this.queue.push(m);
    this.wakePublisher?.();
    return true;
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && !this.inFlight;
  }

  private async publishLoop(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const m = this.queue.shift();
      if (m === undefined) {
        for (const w of this.idleWaiters.splice(0)) w();
        await new Promise<void>((resolve) => (this.wakePublisher = resolve));
        this.wakePublisher = undefined;
        continue;
      }
      this.inFlight = true;
      let accepted = false;
      try {
        accepted = await this.publish(m, signal);
      } finally {
        this.inFlight = false;
        m.settle?.(accepted);
      }
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** true once SNS accepted the message. */
  private async publish(m: QueuedMessage, signal: AbortSignal): Promise<boolean> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) {
        this.counters.retries++;
        await sleep(backoffDelay(attempt - 1, this.backoffOpts, this.random), signal);
      }
      if (signal.aborted) {
        this.counters.dropped++;
        return false;
      }
      try {
        await this.client.send(
          new PublishCommand({
            TopicArn: this.topicArn,
            Message: m.message,
            ...(m.subject !== undefined ? { Subject: m.subject } : {}),
            ...(Object.keys(m.attributes).length > 0 ? { MessageAttributes: m.attributes } : {}),
          }),
          { abortSignal: signal },
        );
        this.counters.published++;
        return true;
      } catch (e) {
        if (signal.aborted) {
          this.counters.dropped++;
          return false;
        }
        const cls = classifyError(e);
        if (cls === 'fatal') {
          this.counters.failed++;
          this.log.error?.('SNS publish failed (not retryable)', { topic: this.topicArn, error: errorMessage(e) });
          return false;
        }
        this.log.debug?.('SNS publish failed; retrying', { error: errorName(e), attempt: attempt + 1 });
        if (attempt + 1 === this.maxAttempts) {
          this.counters.failed++;
          this.log.warn?.('SNS publish gave up after retries', { topic: this.topicArn, attempts: this.maxAttempts, error: errorMessage(e) });
        }
      }
    }
    return false;
  }
}

function numeric(v: string | number | undefined): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

/** SNS subjects: printable ASCII, no line breaks, under 100 characters. */
function sanitizeSubject(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, ' ').trim().slice(0, 99);
}

function truncateUtf8(s: string, maxBytes: number): string {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= maxBytes) return s;
  const marker = ' [truncated]';
  let cut = maxBytes - marker.length;
  // Step back over UTF-8 continuation bytes so no character is split.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut).toString('utf8') + marker;
}
