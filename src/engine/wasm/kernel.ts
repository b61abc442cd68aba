import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RcfStreamError } from '../../util/errors.js';

/** The raw exports of build/rcf.wasm (see assembly/index.ts). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  ioBuffer(length: number): number;
  createForest(trees: number, sampleSize: number, b: number, k: number, timeDecay: number, outputAfter: number, seedHi: number, seedLo: number): number;
  disposeForest(handle: number): void;
  score(handle: number): number;
  attribution(handle: number): void;
  update(handle: number): void;
  process(handle: number, n: number): void;
  updates(handle: number): number;
  isReady(handle: number): number;
  memoryBytes(handle: number): number;
  checkInvariants(handle: number): number;
  exportModelState(handle: number): number;
  stateLength(): number;
  importModelState(handle: number, length: number): void;
}

/**
 * The one instance of the WASM kernel in this process. All forests are handles inside it,
 * sharing one memory (V8 caps the number of wasm memories per process), and all data moves
 * through one kernel-owned f64 I/O buffer whose views are re-created whenever memory grows.
 */
export class Kernel {
  private ioAddress = 0;
  private ioLength = 0;
  private ioView: Float64Array = new Float64Array(0);
  private buffer: ArrayBuffer | null = null;

  constructor(
    readonly exports: KernelExports,
    /** Identifies the binary: the first 16 hex digits of its SHA-256. */
    readonly binaryId: string,
  ) {}

  /** An f64 view of the I/O buffer with at least `length` slots, valid until the next kernel call that can grow memory. */
  io(length: number): Float64Array {
    if (length > this.ioLength) {
      this.ioAddress = this.exports.ioBuffer(length);
      this.ioLength = Math.max(length, this.ioLength * 2, 1024);
      this.buffer = null;
    }
    const buf = this.exports.memory.buffer;
    if (buf !== this.buffer) {
      this.buffer = buf;
      this.ioView = new Float64Array(buf, this.ioAddress, this.ioLength);
    }
    return this.ioView;
  }

  /** Bytes of linear memory the kernel holds (all forests together). */
  get memoryBytes(): number {
    return this.exports.memory.buffer.byteLength;
  }
}

function wasmPath(): string {
  // src/engine/wasm (tests) or dist/src/engine/wasm (built): walk up to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'build', 'rcf.wasm');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('build/rcf.wasm not found: run `npm run build:wasm`');
}

let kernel: Kernel | undefined;

class KernelAbort extends RcfStreamError {
  override readonly name = 'KernelAbort';
  readonly code = 'KERNEL_ABORT';
}

/** Compiles and instantiates the kernel once; later calls return the same instance. */
export function loadKernelSync(): Kernel {
  if (kernel) return kernel;
  const bytes = readFileSync(wasmPath());
  const module = new WebAssembly.Module(bytes);
  let memory: WebAssembly.Memory | undefined;
  const readString = (ptr: number): string => {
    if (!ptr || !memory) return '';
    const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0]! >>> 1;
    return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, len));
  };
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort(message: number, file: number, line: number, column: number): never {
        // Unreachable from user input (the host validates first): this is a kernel bug.
        throw new KernelAbort(`rcf kernel abort: ${readString(message)} at ${readString(file)}:${line}:${column}`);
      },
    },
  });
  const exports = instance.exports as unknown as KernelExports & { _start(): void };
  memory = exports.memory;
  exports._start();
  kernel = new Kernel(exports, createHash('sha256').update(bytes).digest('hex').slice(0, 16));
  return kernel;
}

export async function loadKernel(): Promise<Kernel> {
  return loadKernelSync();
}

export function loadedKernel(): Kernel | undefined {
  return kernel;
}
