import type { ForestConfig } from './options.js';

/**
 * What an engine implements. Inputs are already validated; points are f64 base records
 * at an offset in a Float64Array.
 */
export interface ForestEngine {
  readonly config: ForestConfig;
  /** Identifies the code that computed this model (the WASM binary's hash; empty for TS). */
  readonly binaryId: string;
  /** Total update calls N. */
  readonly updates: number;
  readonly isReady: boolean;
  score(x: Float64Array, offset: number): number;
  /** Writes high/low of length D. */
  attribution(x: Float64Array, offset: number, high: Float64Array, low: Float64Array): void;
  update(x: Float64Array, offset: number): void;
  /** Score then update for each of n records; scores to out[0..n). */
  process(points: Float64Array, n: number, out: Float64Array): void;
  /** The model as engine-neutral words (src/forest/model-state.ts). */
  exportModelState(): Int32Array;
  /** Loads validated words into this fresh forest (same configuration). */
  importModelState(words: Int32Array): void;
  /** Bytes of model state this forest holds (WASM memory or typed arrays). */
  memoryBytes(): number;
  dispose(): void;
}
