/**
 * One Lambda cold start, run as a fresh process by bench/lambda.ts: module
 * load, WASM compile (dist/ modules only, -1 for the bundle, which compiles inside setup),
 * configuration + clients, then the first invocation (whose first step is the
 * first state load from S3). Prints one JSON line. The event comes as JSON in
 * argv[2]; LAMBDA_HANDLER_MODULE names the esbuild bundle when set;
 * configuration comes from the environment.
 */
import type { createHandler } from '../src/lambda/handler.js';

const bundle = process.env['LAMBDA_HANDLER_MODULE'];
const t0 = performance.now();
const { handler } = (await import(bundle ?? '../src/lambda/handler.js')) as { handler: ReturnType<typeof createHandler> };
const t1 = performance.now();
if (bundle === undefined) {
  const { loadKernel } = await import('../src/engine/wasm/wasm-engine.js');
  await loadKernel();
}
const t2 = performance.now();
await handler.runtime();
const t3 = performance.now();
const response = await handler(JSON.parse(process.argv[2]!));
const t4 = performance.now();
process.stdout.write(
  `${JSON.stringify({ importMs: t1 - t0, wasmCompileMs: bundle === undefined ? t2 - t1 : -1, setupMs: t3 - t2, firstInvocationMs: t4 - t3, failures: response.batchItemFailures.length })}\n`,
);
