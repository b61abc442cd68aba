import { describe, expect, it } from 'vitest';
import { createForest, type EngineName } from '../../src/index.js';
import { loadVectorSet, vectorNames } from '../support/vectors.js';

// Every shared reference set from AWS's Java library, replayed with the same protocol
// (score, attribution when recorded, then update). The TRCF sets carry the core
// forest's scores too (TRCF scores equal core scores; their first 10 are 0).
//
// Every set is checked in full on the default wasm engine. The ts engine replays the
// first TS_ROWS rows of each set against AWS's values: its identity with wasm on every
// row is what differential.test.ts establishes, so full ts replays (about 40 s of CPU)
// would check the same thing a second time.
const ENGINES: EngineName[] = ['wasm', 'ts'];
const TS_ROWS = 4_000;
const rowsFor = (engine: EngineName, rows: number): number => (engine === 'ts' ? Math.min(rows, TS_ROWS) : rows);

interface Mismatch { rows: number; first?: string }

function note(m: Mismatch, row: number, what: string, got: number, want: number): void {
  // The bar is bit-equality (the acceptance tolerance is 1e-9; nothing short of exact is expected).
  if (got === want) return;
  m.rows++;
  m.first ??= `row ${row} ${what}: got ${got}, want ${want} (|diff| ${Math.abs(got - want)})`;
}

describe.each(ENGINES)('reference vectors, %s engine', (engine) => {
  it.each(vectorNames())(`%s (${engine === 'ts' ? `first ${TS_ROWS} rows; all rows on wasm` : 'all rows'})`, async (name) => {
    const v = loadVectorSet(name);
    const c = v.config;
    const forest = await createForest({
      dimensions: c.baseDimensions,
      shingleSize: c.shingleSize,
      numberOfTrees: c.numberOfTrees,
      sampleSize: c.sampleSize,
      timeDecay: c.timeDecay,
      outputAfter: c.outputAfter,
      randomSeed: c.randomSeed,
      engine,
    });
    const b = c.baseDimensions;
    const D = c.dimensions;
    const trcf = c.model === 'ThresholdedRandomCutForest';
    const scores: Mismatch = { rows: 0 };
    const attribution: Mismatch = { rows: 0 };
    const rows = rowsFor(engine, c.rows);
    for (let i = 0; i < rows; i++) {
      const x = v.inputs.subarray(i * b, i * b + b);
      const s = forest.score(x);
      note(scores, i, 'score', trcf && i < 10 ? 0 : s, v.score[i]!);
      if (v.high && v.low) {
        const a = forest.attribution(x);
        let bad = false;
        for (let d = 0; d < D && !bad; d++) {
          if (a.high[d] !== v.high[i * D + d] || a.low[d] !== v.low[i * D + d]) {
            bad = true;
            note(attribution, i, `high${d}/low${d}`, a.high[d]!, v.high[i * D + d]!);
            if (!attribution.first) note(attribution, i, `low${d}`, a.low[d]!, v.low[i * D + d]!);
          }
        }
      }
      forest.update(x);
    }
    forest.dispose();
    expect(scores.first ?? 'all rows bit-exact', `${scores.rows} score rows differ`).toBe('all rows bit-exact');
    expect(attribution.first ?? 'all rows bit-exact', `${attribution.rows} attribution rows differ`).toBe('all rows bit-exact');
  });
});

describe('batch process()', () => {
  it.each(ENGINES)('gives the per-point scores of temp_t50_s4 in one call (%s)', async (engine) => {
    const v = loadVectorSet('temp_t50_s4');
    const c = v.config;
    const rows = rowsFor(engine, c.rows);
    const forest = await createForest({ dimensions: 1, shingleSize: 4, numberOfTrees: 50, sampleSize: 256, randomSeed: c.randomSeed, engine });
    const out = forest.process(v.inputs.subarray(0, rows));
    let differ = 0;
    for (let i = 0; i < rows; i++) if (out[i] !== v.score[i]) differ++;
    expect(differ).toBe(0);
    expect(forest.totalUpdates).toBe(rows);
    forest.dispose();
  });
});
