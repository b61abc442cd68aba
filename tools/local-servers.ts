/**
 * Local stand-ins for AWS, for tests and the demo: kinesalite (Kinesis),
 * dynalite (DynamoDB) and moto_server (SNS, SQS, S3).
 *
 * Every server binds 127.0.0.1 on a free port and runs in its own process
 * group (spawned detached) so stop() can kill it with everything it spawned.
 * Each child also watches its stdin pipe and exits when it closes, so a
 * crashed parent does not leave servers behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { AwsConfig, AwsEndpoints } from '../src/aws/clients.js';

export interface LocalServer {
  readonly name: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly pid: number;
  /** What the server wrote to stderr so far (for diagnostics). */
  stderr(): string;
  /** Kills the server's process group; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Give up waiting for the port after this long. Default 15 s. */
  startTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 15_000;
const LOCALHOST = '127.0.0.1';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, LOCALHOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Path of an executable on PATH, or undefined. */
export function findOnPath(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Why moto_server cannot be used, or undefined if it is on PATH. */
export function motoServerUnavailableReason(): string | undefined {
  return findOnPath('moto_server') === undefined
    ? "moto_server is not on PATH (install it with: pip install 'moto[server]')"
    : undefined;
}

export interface KinesaliteOptions extends StartOptions {
  /** Time a stream stays CREATING / UPDATING. Default 0 for fast tests (kinesalite's own default is 500). */
  createStreamMs?: number;
  updateStreamMs?: number;
  deleteStreamMs?: number;
  shardLimit?: number;
}

export function startKinesalite(opts: KinesaliteOptions = {}): Promise<LocalServer> {
  const serverOpts = {
    createStreamMs: opts.createStreamMs ?? 0,
    updateStreamMs: opts.updateStreamMs ?? 0,
    deleteStreamMs: opts.deleteStreamMs ?? 0,
    shardLimit: opts.shardLimit ?? 50,
  };
  return startNodeServer('kinesalite', serverOpts, opts);
}

export interface DynaliteOptions extends StartOptions {
  createTableMs?: number;
  updateTableMs?: number;
  deleteTableMs?: number;
}

export function startDynalite(opts: DynaliteOptions = {}): Promise<LocalServer> {
  const serverOpts = {
    createTableMs: opts.createTableMs ?? 0,
    updateTableMs: opts.updateTableMs ?? 0,
    deleteTableMs: opts.deleteTableMs ?? 0,
  };
  return startNodeServer('dynalite', serverOpts, opts);
}

/** Starts moto_server (SNS, SQS, S3, ...). Throws with the install hint if it is not on PATH. */
export async function startMotoServer(opts: StartOptions = {}): Promise<LocalServer> {
  const reason = motoServerUnavailableReason();
  if (reason !== undefined) throw new Error(reason);
  // The port is chosen before the server binds it; retry if another process took it meanwhile.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // A node supervisor owns moto_server: it kills moto's group when our stdin pipe closes.
    const supervisor = `
      const { spawn } = require('node:child_process');
      const child = spawn('moto_server', ['-H', '${LOCALHOST}', '-p', '${port}'], { stdio: ['ignore', 'inherit', 'inherit'] });
      const bye = () => { try { child.kill('SIGKILL'); } catch {} process.exit(0); };
      process.stdin.on('end', bye); process.stdin.on('error', bye); process.stdin.resume();
      process.on('SIGTERM', bye);
      child.on('exit', (code, sig) => { process.stderr.write('moto_server exited (' + (sig || code) + ')\\n'); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-e', supervisor], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    const server = wrap('moto_server', child, port);
    try {
      await waitForPort(server, child, port, opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
      return server;
    } catch (e) {
      lastError = e;
      await server.stop();
      if (!/address already in use|Errno 98/i.test(server.stderr())) throw e;
    }
  }
  throw lastError;
}

/** Runs a CommonJS server package (kinesalite/dynalite) in a child node on 127.0.0.1:0. */
async function startNodeServer(pkg: 'kinesalite' | 'dynalite', serverOpts: Record<string, unknown>, opts: StartOptions): Promise<LocalServer> {
  let modulePath: string;
  try {
    modulePath = createRequire(import.meta.url).resolve(pkg);
  } catch {
    throw new Error(`${pkg} is not installed (it is a devDependency: run npm install)`);
  }
  const script = `
    const create = require(${JSON.stringify(modulePath)});
    const server = create(${JSON.stringify(serverOpts)});
    server.on('error', (e) => { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exit(1); });
    server.listen(0, '${LOCALHOST}', () => process.stdout.write('LISTENING ' + server.address().port + '\\n'));
    const bye = () => process.exit(0);
    process.stdin.on('end', bye); process.stdin.on('error', bye); process.stdin.resume();
    process.on('SIGTERM', bye);
  `;
  const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => finish(new Error(`${pkg} did not start within ${timeoutMs} ms. stderr:\n${err}`)), timeoutMs);
    const finish = (e: Error | undefined, p?: number): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onOut);
      child.off('exit', onExit);
      if (e) {
        killGroup(child);
        reject(e);
      } else resolve(p!);
    };
    const onOut = (d: Buffer): void => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) finish(undefined, Number(m[1]));
    };
    const onExit = (code: number | null, sig: string | null): void => finish(new Error(`${pkg} exited (${sig ?? code}) before listening. stderr:\n${err}`));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', onOut);
    child.on('exit', onExit);
  });
  const server = wrap(pkg, child, port);
  await waitForPort(server, child, port, timeoutMs);
  return server;
}

function wrap(name: string, child: ChildProcess, port: number): LocalServer {
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 64 * 1024) err = err.slice(-32 * 1024);
  });
  // Drain stdout so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let stopping: Promise<void> | undefined;
  return {
    name,
    port,
    endpoint: `http://${LOCALHOST}:${port}`,
    pid: child.pid ?? -1,
    stderr: () => err,
    stop: () => {
      stopping ??= (async () => {
        killGroup(child, 'SIGTERM');
        const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3_000).unref())]);
        if (!killed) killGroup(child, 'SIGKILL');
        // Also SIGKILL the group: grandchildren (moto's workers) may outlive the leader.
        killGroup(child, 'SIGKILL');
        await Promise.race([exited, new Promise<void>((r) => setTimeout(r, 2_000).unref())]);
        child.stdin?.destroy();
        child.stdout?.destroy();
        child.stderr?.destroy();
      })();
      return stopping;
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function waitForPort(server: LocalServer, child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${server.name} exited (${child.signalCode ?? child.exitCode}) before accepting connections. stderr:\n${server.stderr()}`);
    }
    if (await canConnect(port)) return;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${server.name} did not accept connections on ${LOCALHOST}:${port} within ${timeoutMs} ms. stderr:\n${server.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: LOCALHOST, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Dummy credentials: local servers accept any signature. Never used against real AWS. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** Client config for local servers: fixed region, dummy credentials, HTTP/1.1, quick timeouts. */
export function localAwsConfig(endpoints: AwsEndpoints, extra: Partial<AwsConfig> = {}): AwsConfig {
  return {
    region: 'us-east-1',
    endpoints,
    http1: true,
    credentials: { ...LOCAL_CREDENTIALS },
    connectionTimeoutMs: 2_000,
    requestTimeoutMs: 15_000,
    ...extra,
  };
}
