/**
 * Runs the built command (dist/src/cli/main.js) as a subprocess. `npm test` builds first
 * (`pretest`); tests never run the compiler themselves. When dist/ is missing or older than
 * the sources, requireBuilt() fails with what to run instead of testing stale code.
 */
import { spawn } from 'node:child_process';
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

/** Throws unless dist/ is built from the current sources (`npm run build`; `npm test` does it). */
export function requireBuilt(): void {
  const built = [MAIN, join(ROOT, 'dist', 'src', 'detect', 'model-workers.js'), join(ROOT, 'build', 'rcf.wasm')];
  const missing = built.filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run \`npm run build\` first (npm test builds through pretest)`);
  const oldest = Math.min(...built.map((p) => statSync(p).mtimeMs));
  if (oldest < newestSource(join(ROOT, 'src'))) {
    throw new Error('dist/ is older than src/: run `npm run build` first (npm test builds through pretest), or these tests would run stale code');
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
