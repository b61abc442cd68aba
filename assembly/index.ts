// The WASM kernel's exports. Forests live as integer handles inside this one instance and
// memory; points and results move through one I/O buffer of f64 owned by the kernel, so a
// batch of N records costs O(1) boundary crossings. The host validates every input first.

import { collectIfWorthwhile, noteGarbage } from './garbage';
import { checkInvariants as checkForest } from './invariants';
import { exportState, importState, stateLength } from './model-state';
import { RandomCutForest } from './random-cut-forest';

const forests = new Array<RandomCutForest | null>();
const freeHandles = new Array<i32>();
let io = new StaticArray<f64>(1024);

/** Ensures the I/O buffer holds at least `length` f64 and returns its address. May grow memory. */
export function ioBuffer(length: i32): usize {
  if (io.length < length) {
    noteGarbage(<usize>io.length << 3);
    io = new StaticArray<f64>(max(length, io.length * 2));
    collectIfWorthwhile();
  }
  return changetype<usize>(io);
}

export function createForest(
  numberOfTrees: i32, sampleSize: i32, baseDimensions: i32, shingleSize: i32,
  timeDecay: f64, outputAfter: f64, seedHi: i32, seedLo: i32,
): i32 {
  const seed = (<i64>seedHi << 32) | <i64><u32>seedLo;
  const forest = new RandomCutForest(numberOfTrees, sampleSize, baseDimensions, shingleSize, timeDecay, <i64>outputAfter, seed);
  if (freeHandles.length > 0) {
    const h = freeHandles.pop();
    forests[h] = forest;
    return h;
  }
  forests.push(forest);
  return forests.length - 1;
}

export function disposeForest(handle: i32): void {
  noteGarbage(<usize>forestOf(handle).memoryBytes());
  forests[handle] = null;
  freeHandles.push(handle);
  collectIfWorthwhile();
}

@inline function forestOf(handle: i32): RandomCutForest {
  return changetype<RandomCutForest>(unchecked(forests[handle]));
}

/** Point in io[0..b); returns the score. */
export function score(handle: i32): f64 {
  return forestOf(handle).score(changetype<usize>(io));
}

/** Point in io[0..b); high to io[b..b+D), low to io[b+D..b+2D). */
export function attribution(handle: i32): void {
  const f = forestOf(handle);
  const base = changetype<usize>(io);
  f.attribution(base, base + (<usize>f.baseDimensions << 3));
}

/** Point in io[0..b). May grow memory (point store). */
export function update(handle: i32): void {
  const f = forestOf(handle);
  f.update(changetype<usize>(io));
  collectIfWorthwhile();
}

/** n records in io[0..n·b); scores to io[n·b..n·b+n). May grow memory. */
export function process(handle: i32, n: i32): void {
  const f = forestOf(handle);
  const base = changetype<usize>(io);
  f.process(base, n, base + (<usize>(n * f.baseDimensions) << 3));
  collectIfWorthwhile();
}

export function updates(handle: i32): f64 {
  return <f64>forestOf(handle).updates;
}

export function isReady(handle: i32): bool {
  return forestOf(handle).isReady;
}

export function memoryBytes(handle: i32): i32 {
  return forestOf(handle).memoryBytes();
}

/** 0 when the forest's structure is sound, else a violation code (assembly/invariants.ts). Tests only. */
export function checkInvariants(handle: i32): i32 {
  const code = checkForest(forestOf(handle));
  __collect(); // tests only: keep their scratch from piling up
  return code;
}

/** Exports the forest's model state as i32 words; returns their address (count: stateLength()). May grow memory. */
export function exportModelState(handle: i32): usize {
  const address = exportState(forestOf(handle));
  noteGarbage(<usize>stateLength() << 2); // about the size of the scratch left behind
  collectIfWorthwhile(); // the word buffer is a global, so it survives
  return address;
}

export { stateLength };

/** Imports `length` words of model state from the I/O buffer into a fresh forest. May grow memory. */
export function importModelState(handle: i32, length: i32): void {
  importState(forestOf(handle), changetype<usize>(io), length);
  noteGarbage(<usize>length << 2);
  collectIfWorthwhile();
}
