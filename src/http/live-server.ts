/**
 * `run --http HOST:PORT`: one node:http server with
 *
 *   GET /metrics      Prometheus text (src/metrics/registry.ts)
 *   GET /healthz      200 alive and making progress, else 503 (src/metrics/health.ts)
 *   GET /readyz       200 models loaded and shards assigned, else 503
 *   GET /             the live page; /assets/* its script, stylesheet and uPlot (from the package)
 *   GET /api/events?key=K   Server-Sent Events: a 'reset' message with the key's points, the
 *                     recent anomalies and the counters, then an 'append' message every
 *                     pushIntervalMs with what is new.
 *
 * It is a PipelineObserver (src/pipeline/contracts.ts): hand `server` to the pipeline. Memory is
 * bounded by the LiveFeed; a viewer that reads too slowly is skipped until its socket
 * drains (it then gets what is still in the ring); at most `maxViewers` event streams.
 * Binds 127.0.0.1 unless told otherwise.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HealthMonitor, type HealthOptions, type Verdict } from '../metrics/health.js';
import { PipelineMetrics } from '../metrics/registry.js';
import type { BatchScoredEvent, PipelineObserver, PipelineOutcome, PipelineShape, PipelineStats } from '../pipeline/contracts.js';
import { uplotAssets } from '../report/html.js';
import type { HttpAddress } from './address.js';
import { LiveFeed, type LiveFeedOptions, type PointRing } from './live-feed.js';
import { LIVE_PAGE_CSS, LIVE_PAGE_HTML, LIVE_PAGE_SCRIPT } from './live-page.js';

export interface LiveServerOptions extends HttpAddress {
  feed?: LiveFeedOptions;
  health?: HealthOptions;
  /** Event-stream push period. Default 500 ms. */
  pushIntervalMs?: number;
  /** Event streams served at once; more get 503. Default 100. */
  maxViewers?: number;
  /** Points per message at most (downsampled, anomalies kept). Default 1000. */
  pointsPerMessage?: number;
  processMetrics?: boolean;
}

interface Viewer {
  res: ServerResponse;
  key: string;
  ring: PointRing | undefined;
  sent: number;
  anomaliesSent: number;
  blocked: boolean;
}

export class LiveServer implements PipelineObserver {
  readonly metrics: PipelineMetrics;
  readonly feed: LiveFeed;
  readonly health: HealthMonitor;
  readonly #server: Server;
  readonly #viewers = new Set<Viewer>();
  readonly #pushMs: number;
  readonly #maxViewers: number;
  readonly #budget: number;
  #source: { stats(): PipelineStats } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  #pushMsTotal = 0;
  #last: { at: number; scored: number } | undefined;
  #rate = 0;
  #url = '';

  private constructor(options: LiveServerOptions) {
    this.metrics = new PipelineMetrics({ processMetrics: options.processMetrics });
    this.feed = new LiveFeed(options.feed);
    this.health = new HealthMonitor(options.health);
    this.#pushMs = options.pushIntervalMs ?? 500;
    this.#maxViewers = options.maxViewers ?? 100;
    this.#budget = options.pointsPerMessage ?? 1000;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(error as Error).message}\n`);
      });
    });
    // Keep-alive sockets (event streams especially) must not hold close() up.
    this.#server.keepAliveTimeout = 5_000;
  }

  static async start(options: LiveServerOptions): Promise<LiveServer> {
    const s = new LiveServer(options);
    await new Promise<void>((resolve, reject) => {
      s.#server.once('error', reject);
      s.#server.listen(options.port, options.host, () => {
        s.#server.off('error', reject);
        resolve();
      });
    });
    const a = s.#server.address() as AddressInfo;
    s.#url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    return s;
  }

  /** e.g. http://127.0.0.1:9400 */
  get url(): string {
    return this.#url;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  // --- PipelineObserver ---------------------------------------------------------------

  started(event: { stats: { stats(): PipelineStats }; shape: PipelineShape }): void {
    this.#source = event.stats;
    this.feed.setShape(event.shape);
    this.metrics.started(event);
    this.health.attached();
  }

  batchScored(event: BatchScoredEvent): void {
    this.metrics.batchScored(event);
    this.feed.scored(event);
  }

  /** The pipeline began to stop (signal, idle, failure): not ready any more. */
  stopping(): void {
    this.health.stopping();
  }

  stopped(outcome: PipelineOutcome): void {
    this.health.stopped(outcome);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const v of this.#viewers) v.res.end();
    this.#viewers.clear();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  // --- HTTP ------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    switch (url.pathname) {
      case '/metrics': {
        const { text, contentType } = await this.metrics.scrape();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(text);
        return;
      }
      case '/healthz':
        this.#verdict(res, this.health.health(this.#stats()));
        return;
      case '/readyz':
        this.#verdict(res, this.health.readiness(this.#stats()));
        return;
      case '/':
        this.#static(res, 'text/html; charset=utf-8', LIVE_PAGE_HTML);
        return;
      case '/assets/live.js':
        this.#static(res, 'text/javascript; charset=utf-8', LIVE_PAGE_SCRIPT);
        return;
      case '/assets/live.css':
        this.#static(res, 'text/css; charset=utf-8', LIVE_PAGE_CSS);
        return;
      case '/assets/uPlot.iife.min.js':
        this.#static(res, 'text/javascript; charset=utf-8', uplotAssets().script);
        return;
      case '/assets/uPlot.min.css':
        this.#static(res, 'text/css; charset=utf-8', uplotAssets().css);
        return;
      case '/favicon.ico':
        res.writeHead(204).end();
        return;
      case '/api/events':
        this.#events(req, res, url.searchParams.get('key') ?? '');
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  #stats(): PipelineStats | undefined {
    return this.#source?.stats();
  }

  #verdict(res: ServerResponse, v: Verdict): void {
    res.writeHead(v.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(v)}\n`);
  }

  #static(res: ServerResponse, type: string, body: string): void {
    res
      .writeHead(200, {
        'content-type': type,
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        'cache-control': 'no-cache',
      })
      .end(body);
  }

  #events(req: IncomingMessage, res: ServerResponse, key: string): void {
    if (this.#viewers.size >= this.#maxViewers) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' }).end(`at most ${this.#maxViewers} live viewers\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const viewer: Viewer = { res, key, ring: undefined, sent: 0, anomaliesSent: 0, blocked: false };
    this.#viewers.add(viewer);
    const drop = (): void => {
      this.#viewers.delete(viewer);
      if (this.#viewers.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
    req.on('close', drop);
    res.on('error', drop);
    res.on('drain', () => {
      viewer.blocked = false;
    });
    this.#send(viewer, this.#message(viewer, true, this.#counters()));
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#pushMs);
      this.#timer.unref();
    }
  }

  #send(v: Viewer, message: object): void {
    if (v.res.destroyed || v.res.writableEnded) return;
    if (!v.res.write(`data: ${JSON.stringify(message)}\n\n`)) v.blocked = true;
  }

  /** Seconds spent building and writing event-stream messages so far (what viewers cost the pipeline's thread). */
  get pushSeconds(): number {
    return this.#pushMsTotal / 1000;
  }

  #tick(): void {
    const started = performance.now();
    try {
      this.#push();
    } finally {
      this.#pushMsTotal += performance.now() - started;
    }
  }

  #push(): void {
    this.#ticks++;
    const counters = this.#counters();
    // Viewers of one key that are in step get the same message: built and serialised once.
    const cache = new Map<string, string>();
    for (const v of this.#viewers) {
      if (v.blocked || v.res.destroyed || v.res.writableEnded) continue;
      const id = `${v.sent}:${v.anomaliesSent}:${v.ring === this.feed.ring(v.key) ? 'same' : 'new'}:${v.key}`;
      let text = cache.get(id);
      if (text === undefined) {
        text = `data: ${JSON.stringify(this.#message(v, false, counters))}\n\n`;
        cache.set(id, text);
      } else this.#advance(v);
      if (!v.res.write(text)) v.blocked = true;
    }
  }

  /** Moves a viewer on as #message would, for a viewer given a cached message. */
  #advance(v: Viewer): void {
    const ring = this.feed.ring(v.key);
    v.ring = ring;
    if (ring !== undefined) v.sent = ring.written;
    v.anomaliesSent = this.feed.anomaliesWritten;
  }

  #message(v: Viewer, first: boolean, counters: Record<string, number>): object {
    const ring = this.feed.ring(v.key);
    // A key's ring is reused when the key is dropped: start over then.
    const reset = first || ring !== v.ring;
    if (reset) {
      v.ring = ring;
      v.sent = 0;
    }
    const points = ring?.since(v.sent, this.#budget);
    if (ring !== undefined) v.sent = ring.written;
    const total = this.feed.anomaliesWritten;
    const since = reset ? 0 : v.anomaliesSent;
    const anomalies = total === since ? [] : this.feed.anomalies(v.key).filter((a) => a.seq >= since);
    v.anomaliesSent = total;
    const message: Record<string, unknown> = { type: reset ? 'reset' : 'append', field: this.feed.shape.fields[0] ?? 'value', counters };
    if (points !== undefined) message['points'] = points;
    else if (reset) message['points'] = { t: [], value: [], score: [], threshold: [], anomaly: [] };
    if (anomalies.length > 0 || reset) message['anomalies'] = anomalies;
    if (reset || this.#ticks % 4 === 0) {
      message['keys'] = this.feed.keys(500);
      message['keysDropped'] = this.feed.keysDropped;
    }
    return message;
  }

  #counters(): Record<string, number> {
    const s = this.#stats();
    if (s === undefined) return {};
    const now = Date.now();
    if (this.#last !== undefined && now > this.#last.at) this.#rate = ((s.recordsScored - this.#last.scored) * 1000) / (now - this.#last.at);
    this.#last = { at: now, scored: s.recordsScored };
    const behind = Object.values(s.source?.millisBehindLatest ?? {});
    return {
      'records read': s.recordsRead,
      'records scored': s.recordsScored,
      'records/s (now)': Math.round(this.#rate),
      anomalies: s.anomalies,
      'bad records': s.badRecords,
      'dead letters': s.deadLettered.file + s.deadLettered.stream,
      'output records': s.outputRecords,
      'notifications queued': s.notifications.queued,
      'notifications summarised': s.notifications.suppressed,
      'notifications dropped': s.notifications.dropped,
      'notifications sent': s.sns?.published ?? 0,
      'checkpoints saved': s.checkpoints.saved,
      'checkpoint failures': s.checkpoints.failed,
      models: s.models,
      evictions: s.evictions,
      'ms behind (max)': behind.length > 0 ? Math.max(...behind) : 0,
      'uptime s': Math.round(s.uptimeSeconds),
      'live viewers': this.#viewers.size,
    };
  }
}
