/**
 * Creating and restoring forests with either engine. The package barrel
 * (src/index.ts) re-exports these; modules inside src/ import them from here.
 */
import { TsEngine } from '../engine/ts/ts-engine.js';
import { WasmEngine, loadKernel, loadKernelSync } from '../engine/wasm/wasm-engine.js';
import { Forest } from './forest.js';
import { resolveOptions, type EngineName, type ForestOptions } from './options.js';
import { decodeSnapshot } from './snapshot.js';

/** Creates a forest. The WASM kernel is compiled once per process and shared by all forests. */
export async function createForest(options: ForestOptions): Promise<Forest> {
  return createForestSync(options); // validates first, then compiles the kernel on first use
}

/** Synchronous variant (the kernel is small enough to compile synchronously in Node). */
export function createForestSync(options: ForestOptions): Forest {
  const { engine, ...config } = resolveOptions(options);
  if (engine === 'ts') return new Forest(new TsEngine(config), 'ts');
  return new Forest(new WasmEngine(loadKernelSync(), config), 'wasm');
}

/**
 * Rebuilds a forest from `forest.snapshot()` bytes, with either engine (default 'wasm').
 * Corrupt, truncated or incompatible input throws a SnapshotError; it never yields a model.
 */
export async function restoreForest(bytes: Uint8Array, options: { engine?: EngineName } = {}): Promise<Forest> {
  return restoreForestSync(bytes, options);
}

export function restoreForestSync(bytes: Uint8Array, options: { engine?: EngineName } = {}): Forest {
  const { config, words } = decodeSnapshot(bytes);
  const engine = options.engine ?? 'wasm';
  if (engine !== 'wasm' && engine !== 'ts') throw new TypeError(`engine must be "wasm" or "ts", got ${String(engine)}`);
  const impl = engine === 'ts' ? new TsEngine(config) : new WasmEngine(loadKernelSync(), config);
  impl.importModelState(words);
  return new Forest(impl, engine);
}

export { loadKernel };
