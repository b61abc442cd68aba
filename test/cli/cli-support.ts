/**
 * Runs the built command (dist/src/cli/main.js) as a subprocess. `npm test` builds first;
 * when dist/ is missing or older than the sources it is rebuilt here once, so running
 * vitest directly after an edit still tests the current code.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export function ensureBuilt(): void {
  const built = [MAIN, join(ROOT, 'dist', 'src', 'detect', 'detector-host.js')];
  const oldest = Math.min(...built.map((p) => (existsSync(p) ? statSync(p).mtimeMs : 0)));
  if (oldest >= newestSource(join(ROOT, 'src'))) return;
  const result = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  // tsc emits despite type errors elsewhere in the tree; only a missing output is fatal.
  if (!built.every((p) => existsSync(p))) {
    throw new Error(`could not build the CLI (npx tsc -p tsconfig.build.json):\n${result.stdout}${result.stderr}`);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes for stdin; stdin is closed empty when absent. */
  input?: string | Buffer;
  cwd?: string;
}

export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}
