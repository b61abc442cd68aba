/**
 * FaultProxy: an HTTP proxy on 127.0.0.1 in front of a JSON-protocol AWS
 * endpoint (kinesalite) that injects faults by X-Amz-Target, for tests and
 * demos of the retry paths:
 *
 * - `throttle`: 400 ProvisionedThroughputExceededException, request not forwarded;
 * - `internal`: 500 InternalFailure, request not forwarded;
 * - `expired-iterator`: 400 ExpiredIteratorException, request not forwarded;
 * - `partial`: PutRecords partial failure. The chosen entries are REMOVED from
 *   the forwarded request and per-entry ProvisionedThroughputExceededException
 *   results are synthesised at their positions, so a failed entry really was
 *   not written (rewriting the response after forwarding would store records
 *   the client is told failed, and retries would duplicate them).
 *
 * A rule fires on given call numbers (`calls`, 1-based per target), with a
 * probability (seeded, reproducible), or both; `times` caps its injections.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type FaultKind = 'throttle' | 'internal' | 'expired-iterator' | 'partial';

export interface FaultRule {
  /** Operation, e.g. `GetRecords`, or a full target `Kinesis_20131202.GetRecords`. */
  target: string;
  fault: FaultKind;
  /** 1-based numbers of the calls to this target that fail. */
  calls?: number[];
  /** Chance per call (0..1). With `calls`, both must agree. Default 1 if `calls` is absent. */
  probability?: number;
  /** Stop after this many injections. */
  times?: number;
  /** For `partial`: chance that each entry fails (default 0.3), or the entry indexes that fail. */
  entryProbability?: number;
  entryIndexes?: number[];
}

export interface FaultProxyOptions {
  /** Upstream base URL, e.g. kinesalite's endpoint. */
  target: string;
  rules?: FaultRule[];
  /** Seed for the probability draws. Default 1. */
  seed?: number;
}

export interface FaultProxyStats {
  /** Requests seen per operation. */
  requests: Record<string, number>;
  /** Injections per `${operation}:${fault}`. */
  injected: Record<string, number>;
  /** PutRecords entries failed by `partial` rules. */
  injectedEntries: number;
  /** PutRecords entries forwarded upstream. */
  forwardedEntries: number;
}

export interface FaultProxy {
  readonly endpoint: string;
  readonly port: number;
  setRules(rules: FaultRule[]): void;
  stats(): FaultProxyStats;
  resetStats(): void;
  close(): Promise<void>;
}

interface ActiveRule extends FaultRule {
  fired: number;
}

const ERROR_TYPES: Record<Exclude<FaultKind, 'partial'>, { status: number; type: string; message: string }> = {
  throttle: { status: 400, type: 'ProvisionedThroughputExceededException', message: 'Rate exceeded for shard (injected by fault proxy).' },
  internal: { status: 500, type: 'InternalFailure', message: 'Internal service failure (injected by fault proxy).' },
  'expired-iterator': { status: 400, type: 'ExpiredIteratorException', message: 'Iterator expired (injected by fault proxy).' },
};

/** Small deterministic PRNG (mulberry32) so fault schedules are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function operationOf(target: string | undefined): string {
  if (!target) return '(none)';
  const dot = target.lastIndexOf('.');
  return dot >= 0 ? target.slice(dot + 1) : target;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Upstream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(opts.target);
  const random = seeded(opts.seed ?? 1);
  let rules: ActiveRule[] = (opts.rules ?? []).map((r) => ({ ...r, fired: 0 }));
  let stats: FaultProxyStats = { requests: {}, injected: {}, injectedEntries: 0, forwardedEntries: 0 };

  function forward(req: IncomingMessage, body: Buffer): Promise<Upstream> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
      const up = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (res) => {
          readBody(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }), reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });
  }

  function send(res: ServerResponse, status: number, headers: Record<string, string | string[] | undefined>, body: Buffer): void {
    const h: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      const lk = k.toLowerCase();
      if (lk === 'content-length' || lk === 'transfer-encoding' || lk === 'connection' || lk === 'keep-alive') continue;
      h[k] = v;
    }
    h['content-length'] = String(body.length);
    res.writeHead(status, h);
    res.end(body);
  }

  function pickRule(op: string, callNo: number): ActiveRule | undefined {
    for (const r of rules) {
      if (operationOf(r.target) !== op) continue;
      if (r.times !== undefined && r.fired >= r.times) continue;
      if (r.calls !== undefined && !r.calls.includes(callNo)) continue;
      const p = r.probability ?? 1;
      if (p < 1 && random() >= p) continue;
      return r;
    }
    return undefined;
  }

  function count(op: string, fault: FaultKind): void {
    const key = `${op}:${fault}`;
    stats.injected[key] = (stats.injected[key] ?? 0) + 1;
  }

  async function partialPut(req: IncomingMessage, res: ServerResponse, body: Buffer, rule: ActiveRule, op: string): Promise<void> {
    const input = JSON.parse(body.toString('utf8')) as { Records: unknown[] } & Record<string, unknown>;
    const n = input.Records.length;
    const failIdx = new Set<number>();
    if (rule.entryIndexes) {
      for (const i of rule.entryIndexes) if (i >= 0 && i < n) failIdx.add(i);
    } else {
      const p = rule.entryProbability ?? 0.3;
      for (let i = 0; i < n; i++) if (random() < p) failIdx.add(i);
    }
    if (failIdx.size === 0) {
      stats.forwardedEntries += n;
      const up = await forward(req, body);
      send(res, up.status, up.headers, up.body);
      return;
    }
    count(op, 'partial');
    stats.injectedEntries += failIdx.size;
    const kept = input.Records.filter((_, i) => !failIdx.has(i));
    let upResults: Record<string, unknown>[] = [];
    let upFailed = 0;
    let headers: Record<string, string | string[] | undefined> = { 'content-type': 'application/x-amz-json-1.1' };
    if (kept.length > 0) {
      stats.forwardedEntries += kept.length;
      const up = await forward(req, Buffer.from(JSON.stringify({ ...input, Records: kept }), 'utf8'));
      if (up.status !== 200) {
        // Upstream refused the rest: pass its error through unchanged.
        send(res, up.status, up.headers, up.body);
        return;
      }
      const parsed = JSON.parse(up.body.toString('utf8')) as { Records: Record<string, unknown>[]; FailedRecordCount?: number };
      upResults = parsed.Records;
      upFailed = parsed.FailedRecordCount ?? 0;
      headers = up.headers;
    }
    const merged: Record<string, unknown>[] = [];
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (failIdx.has(i)) {
        merged.push({
          ErrorCode: 'ProvisionedThroughputExceededException',
          ErrorMessage: 'Rate exceeded for shard in stream (injected by fault proxy).',
        });
      } else {
        merged.push(upResults[k++] ?? { ErrorCode: 'InternalFailure', ErrorMessage: 'missing upstream result' });
      }
    }
    const out = Buffer.from(JSON.stringify({ FailedRecordCount: upFailed + failIdx.size, Records: merged }), 'utf8');
    send(res, 200, headers, out);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const targetHeader = req.headers['x-amz-target'];
    const op = operationOf(Array.isArray(targetHeader) ? targetHeader[0] : targetHeader);
    const callNo = (stats.requests[op] = (stats.requests[op] ?? 0) + 1);
    const rule = pickRule(op, callNo);
    if (rule !== undefined) {
      rule.fired++;
      if (rule.fault === 'partial') {
        if (op === 'PutRecords') return partialPut(req, res, body, rule, op);
      } else {
        count(op, rule.fault);
        const e = ERROR_TYPES[rule.fault];
        const payload = Buffer.from(JSON.stringify({ __type: e.type, message: e.message }), 'utf8');
        send(res, e.status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': e.type }, payload);
        return;
      }
    }
    if (op === 'PutRecords') {
      try {
        stats.forwardedEntries += (JSON.parse(body.toString('utf8')) as { Records?: unknown[] }).Records?.length ?? 0;
      } catch {
        /* not JSON: forwarded as is */
      }
    }
    const up = await forward(req, body);
    send(res, up.status, up.headers, up.body);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        const payload = Buffer.from(JSON.stringify({ __type: 'InternalFailure', message: `fault proxy: ${String(e)}` }));
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.1', 'content-length': String(payload.length) });
        res.end(payload);
      } else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    setRules(next: FaultRule[]): void {
      rules = next.map((r) => ({ ...r, fired: 0 }));
    },
    stats(): FaultProxyStats {
      return structuredClone(stats);
    },
    resetStats(): void {
      stats = { requests: {}, injected: {}, injectedEntries: 0, forwardedEntries: 0 };
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
