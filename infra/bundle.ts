/**
 * Builds the function's code asset without Docker: esbuild bundles the
 * handler (src/lambda/handler.ts, with the AWS SDK clients it uses) into one
 * ES module, next to a copy of build/rcf.wasm where the kernel loader looks
 * for it (build/ beside the module). The same bytes give the same asset hash,
 * so an unchanged handler does not redeploy.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/** The repository root: the nearest directory up with rcf-stream's package.json. */
export function projectRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rcf-stream') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the rcf-stream package root');
    dir = up;
  }
}

/** Bundles the handler into `outDir` (emptied first) and returns it. Needs build/rcf.wasm (npm run build:wasm). */
export function bundleHandler(outDir: string, root: string = projectRoot()): string {
  const wasm = join(root, 'build', 'rcf.wasm');
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run npm run build:wasm first`);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'build'), { recursive: true });
  buildSync({
    entryPoints: [join(root, 'src', 'lambda', 'handler.ts')],
    outfile: join(outDir, 'index.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'error',
    // Some SDK dependencies are CommonJS and call require(); give the ES module one.
    banner: { js: "import { createRequire as __rcfCreateRequire } from 'node:module'; const require = __rcfCreateRequire(import.meta.url);" },
  });
  copyFileSync(wasm, join(outDir, 'build', 'rcf.wasm'));
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
  return outDir;
}
