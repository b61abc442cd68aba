/**
 * A/B timing of two kernel builds in one process, for the optimisation log (bench/NOTES.md).
 *
 *   node dist/bench/ab.js A.wasm B.wasm [config] [rounds] [block]
 *
 * Four forests of one configuration live side by side, created A, B, B', A' so that neither
 * build always sits in the same place in memory. After a warm-up, each round feeds the same
 * block of points to all four, in an order that rotates by one every round, timing each
 * process() call by the process's CPU time. A round's figure is (A + A')/(B + B'): B's speed
 * relative to A's. Prints the median over rounds with its quartiles, both builds' rates, and
 * whether all four score sums are equal (the builds must compute the same scores). Run it in
 * both argument orders; an A/A pairing measures the harness's own bias.
 */
import { readFileSync } from 'node:fs';
import { resolveOptions } from '../src/forest/options.js';
import { CONFIGS, forestOptions } from './configs.js';
import { createStream, take } from './streams.js';

interface RawKernel {
  memory: WebAssembly.Memory;
  _start(): void;
  ioBuffer(length: number): number;
  createForest(trees: number, sampleSize: number, b: number, shingle: number, decay: number, outputAfter: number, seedHi: number, seedLo: number): number;
  process(handle: number, n: number): void;
}

function instantiate(path: string): RawKernel {
  const module = new WebAssembly.Module(readFileSync(path));
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort() {
        throw new Error(`${path}: kernel abort`);
      },
    },
  });
  const kernel = instance.exports as unknown as RawKernel;
  kernel._start();
  return kernel;
}

const [pathA, pathB, configId = 't30-5d-s8', roundsArg = '41', blockArg = '1000'] = process.argv.slice(2);
if (pathA === undefined || pathB === undefined) {
  process.stderr.write('usage: node dist/bench/ab.js A.wasm B.wasm [config] [rounds] [block]\n');
  process.exit(2);
}
const config = CONFIGS.find((c) => c.id === configId);
if (config === undefined) {
  process.stderr.write(`unknown config ${configId}; one of ${CONFIGS.map((c) => c.id).join(', ')}\n`);
  process.exit(2);
}
const o = resolveOptions(forestOptions(config, 'wasm'));
const rounds = Number(roundsArg);
const block = Number(blockArg);
const warm = 5000;
const b = o.baseDimensions;
const data = take(createStream(config.stream), warm + rounds * block);

const sides = [pathA, pathB, pathB, pathA].map((path) => {
  const kernel = instantiate(path);
  const handle = kernel.createForest(o.numberOfTrees, o.sampleSize, b, o.shingleSize, o.timeDecay, o.outputAfter, o.seedHi, o.seedLo);
  return { kernel, handle, sum: 0 };
});

/** Feeds points [from, from + n) to one forest; returns the CPU microseconds process() took. */
function feed(side: (typeof sides)[number], from: number, n: number): number {
  const { kernel } = side;
  // ioBuffer() can grow the memory, which detaches the buffer read before it: read it after.
  const io = kernel.ioBuffer(n * (b + 1));
  new Float64Array(kernel.memory.buffer, io, n * b).set(data.subarray(from * b, (from + n) * b));
  const t0 = process.cpuUsage();
  kernel.process(side.handle, n);
  const t = process.cpuUsage(t0);
  // The scores follow the points in the I/O buffer (memory may have grown: a fresh view).
  const out = kernel.ioBuffer(n * (b + 1)) + n * b * 8;
  const scores = new Float64Array(kernel.memory.buffer, out, n);
  for (let i = 0; i < n; i++) side.sum += scores[i]!;
  return t.user + t.system;
}

for (const side of sides) feed(side, 0, warm);
const ratios: number[] = [];
const timesA: number[] = [];
const timesB: number[] = [];
for (let r = 0; r < rounds; r++) {
  const from = warm + r * block;
  const t = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    const k = (i + r) % 4;
    t[k] = feed(sides[k]!, from, block);
  }
  const a = t[0]! + t[3]!;
  const bb = t[1]! + t[2]!;
  ratios.push(a / bb);
  timesA.push(a);
  timesB.push(bb);
}
const sorted = (x: number[]) => [...x].sort((p, q) => p - q);
const median = (x: number[]) => sorted(x)[x.length >> 1]!;
const q = sorted(ratios);
const equal = sides.every((s) => s.sum === sides[0]!.sum);
const rate = (us: number) => ((2 * block) / us) * 1e6;
process.stdout.write(
  `${configId}: B/A speed ${median(ratios).toFixed(3)} (quartiles ${q[rounds >> 2]!.toFixed(3)}, ${q[(3 * rounds) >> 2]!.toFixed(3)}; ${rounds} rounds of ${block})` +
    `  A ${rate(median(timesA)).toFixed(0)} B ${rate(median(timesB)).toFixed(0)} points/CPU-s  score sums ${equal ? 'equal' : 'DIFFER'}\n`,
);
if (!equal) process.exitCode = 1;
