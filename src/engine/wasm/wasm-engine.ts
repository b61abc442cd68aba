import type { ForestEngine } from '../../forest/engine.js';
import type { ForestConfig } from '../../forest/options.js';
import type { Kernel } from './kernel.js';

export { loadKernel, loadKernelSync, loadedKernel } from './kernel.js';

/** Records per kernel call in process(): bounds the I/O buffer, not the batch size. */
const CHUNK = 4096;

/** A forest living as a handle in the shared WASM kernel. */
export class WasmEngine implements ForestEngine {
  private readonly handle: number;
  private disposed = false;

  constructor(
    private readonly kernel: Kernel,
    readonly config: ForestConfig,
  ) {
    const c = config;
    this.handle = kernel.exports.createForest(
      c.numberOfTrees, c.sampleSize, c.baseDimensions, c.shingleSize, c.timeDecay, c.outputAfter, c.seedHi, c.seedLo,
    );
  }

  get binaryId(): string {
    return this.kernel.binaryId;
  }

  get updates(): number {
    return this.kernel.exports.updates(this.handle);
  }

  get isReady(): boolean {
    return this.kernel.exports.isReady(this.handle) !== 0;
  }

  private put(x: Float64Array, offset: number, extra: number): Float64Array {
    const b = this.config.baseDimensions;
    const io = this.kernel.io(b + extra);
    for (let i = 0; i < b; i++) io[i] = x[offset + i]!;
    return io;
  }

  score(x: Float64Array, offset: number): number {
    this.put(x, offset, 0);
    return this.kernel.exports.score(this.handle);
  }

  attribution(x: Float64Array, offset: number, high: Float64Array, low: Float64Array): void {
    const D = this.config.dimensions;
    const b = this.config.baseDimensions;
    const io = this.put(x, offset, 2 * D);
    this.kernel.exports.attribution(this.handle);
    high.set(io.subarray(b, b + D));
    low.set(io.subarray(b + D, b + 2 * D));
  }

  update(x: Float64Array, offset: number): void {
    this.put(x, offset, 0);
    this.kernel.exports.update(this.handle);
  }

  process(points: Float64Array, n: number, out: Float64Array): void {
    const b = this.config.baseDimensions;
    for (let start = 0; start < n; start += CHUNK) {
      const m = Math.min(CHUNK, n - start);
      let io = this.kernel.io(m * (b + 1));
      io.set(points.subarray(start * b, (start + m) * b));
      this.kernel.exports.process(this.handle, m);
      io = this.kernel.io(m * (b + 1)); // memory may have grown
      out.set(io.subarray(m * b, m * b + m), start);
    }
  }

  /** 0 when the kernel's structures are sound, else a violation code. For tests. */
  checkInvariants(): number {
    return this.kernel.exports.checkInvariants(this.handle);
  }

  /** The model as engine-neutral words (src/forest/model-state.ts). */
  exportModelState(): Int32Array {
    const e = this.kernel.exports;
    const address = e.exportModelState(this.handle);
    return new Int32Array(e.memory.buffer, address, e.stateLength()).slice();
  }

  /** Loads words (already validated against this forest's config) into this fresh forest. */
  importModelState(words: Int32Array): void {
    const io = this.kernel.io(Math.ceil(words.length / 2));
    new Int32Array(io.buffer, io.byteOffset, words.length).set(words);
    this.kernel.exports.importModelState(this.handle, words.length);
  }

  memoryBytes(): number {
    return this.kernel.exports.memoryBytes(this.handle);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.kernel.exports.disposeForest(this.handle);
  }
}
