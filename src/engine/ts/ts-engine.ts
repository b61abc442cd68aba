import type { ForestEngine } from '../../forest/engine.js';
import type { ForestConfig } from '../../forest/options.js';
import { exportModelState, importModelState } from './model-state.js';
import { RandomCutForest } from './random-cut-forest.js';

/** The pure-TypeScript engine behind the ForestEngine interface. */
export class TsEngine implements ForestEngine {
  private forest: RandomCutForest;
  readonly binaryId = '';

  constructor(readonly config: ForestConfig) {
    this.forest = new RandomCutForest(config);
  }

  /** The model as engine-neutral words (src/forest/model-state.ts). */
  exportModelState(): Int32Array {
    return exportModelState(this.forest);
  }

  /** Replaces this fresh forest's model with validated words. */
  importModelState(words: Int32Array): void {
    this.forest = importModelState(this.config, words);
  }

  get updates(): number {
    return this.forest.updates;
  }

  get isReady(): boolean {
    return this.forest.isReady;
  }

  score(x: Float64Array, offset: number): number {
    return this.forest.score(x, offset);
  }

  attribution(x: Float64Array, offset: number, high: Float64Array, low: Float64Array): void {
    this.forest.attribution(x, offset, high, low);
  }

  update(x: Float64Array, offset: number): void {
    this.forest.update(x, offset);
  }

  process(points: Float64Array, n: number, out: Float64Array): void {
    this.forest.process(points, n, out);
  }

  memoryBytes(): number {
    return this.forest.memoryBytes();
  }

  dispose(): void {}

  /** The engine's model, for invariant checks and snapshots. */
  get model(): RandomCutForest {
    return this.forest;
  }
}
