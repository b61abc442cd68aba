/**
 * rcf-stream: Random Cut Forest anomaly detection with AWS-identical scores.
 *
 *   const forest = await createForest({ dimensions: 1, randomSeed: 7 });
 *   const score = forest.score([30.1]); forest.update([30.1]);
 */
import { TsEngine } from './engine/ts/ts-engine.js';
import { WasmEngine, loadKernel, loadKernelSync } from './engine/wasm/wasm-engine.js';
import { Forest } from './forest/forest.js';
import { resolveOptions, type ForestOptions } from './forest/options.js';

export { Forest, type Attribution } from './forest/forest.js';
export { LIMITS, type EngineName, type ForestConfig, type ForestOptions } from './forest/options.js';

/** Creates a forest. The WASM kernel is compiled once per process and shared by all forests. */
export async function createForest(options: ForestOptions): Promise<Forest> {
  const config = resolveOptions(options);
  if (config.engine === 'ts') return new Forest(new TsEngine(config), 'ts');
  const kernel = await loadKernel();
  return new Forest(new WasmEngine(kernel, config), 'wasm');
}

/** Synchronous variant (the kernel is small enough to compile synchronously in Node). */
export function createForestSync(options: ForestOptions): Forest {
  const config = resolveOptions(options);
  if (config.engine === 'ts') return new Forest(new TsEngine(config), 'ts');
  return new Forest(new WasmEngine(loadKernelSync(), config), 'wasm');
}

export { loadKernel };
