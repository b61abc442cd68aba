import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The shared folder (reference vectors, NAB data) lives beside the repository: `../shared`
 * from the repo root in CI and in sessions. RCF_SHARED_DIR overrides it.
 */
export function sharedDir(): string {
  const candidates = [process.env.RCF_SHARED_DIR, resolve(here, '../../../shared'), '/work/shared'].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  for (const c of candidates) if (existsSync(join(c, 'rcf', 'vectors'))) return c;
  throw new Error(`shared reference data not found (looked in ${candidates.join(', ')}); set RCF_SHARED_DIR`);
}

export interface VectorConfig {
  name: string;
  model: 'RandomCutForest' | 'ThresholdedRandomCutForest';
  numberOfTrees: number;
  sampleSize: number;
  shingleSize: number;
  baseDimensions: number;
  dimensions: number;
  randomSeed: number;
  timeDecay: number;
  outputAfter: number;
  attribution: boolean;
  rows: number;
  columns: string[];
}

export interface VectorSet {
  config: VectorConfig;
  /** rows × baseDimensions inputs, exactly the f32 values (as f64). */
  inputs: Float64Array;
  score: Float64Array;
  /** rows × D pairs, when the set has attribution. */
  high?: Float64Array;
  low?: Float64Array;
  grade?: Float64Array;
  threshold?: Float64Array;
}

export function vectorNames(): string[] {
  const dir = join(sharedDir(), 'rcf', 'vectors');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
}

export function loadVectorSet(name: string): VectorSet {
  const dir = join(sharedDir(), 'rcf', 'vectors');
  const config = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as VectorConfig;
  const text = gunzipSync(readFileSync(join(dir, `${name}.csv.gz`))).toString('utf8');
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = lines[0]!.split(',');
  const col = (n: string): number => header.indexOf(n);
  const rows = lines.length - 1;
  const b = config.baseDimensions;
  const D = config.dimensions;
  const inputs = new Float64Array(rows * b);
  const score = new Float64Array(rows);
  const attr = header.includes('high0');
  const high = attr ? new Float64Array(rows * D) : undefined;
  const low = attr ? new Float64Array(rows * D) : undefined;
  const trcf = header.includes('grade');
  const grade = trcf ? new Float64Array(rows) : undefined;
  const threshold = trcf ? new Float64Array(rows) : undefined;
  const xCols = Array.from({ length: b }, (_, i) => col(`x${i}`));
  const hCols = Array.from({ length: D }, (_, i) => col(`high${i}`));
  const lCols = Array.from({ length: D }, (_, i) => col(`low${i}`));
  const sCol = col('score');
  const gCol = col('grade');
  const tCol = col('threshold');
  for (let r = 0; r < rows; r++) {
    const f = lines[r + 1]!.split(',');
    for (let i = 0; i < b; i++) inputs[r * b + i] = Math.fround(Number(f[xCols[i]!]));
    score[r] = Number(f[sCol]);
    if (high && low) {
      for (let d = 0; d < D; d++) {
        high[r * D + d] = Number(f[hCols[d]!]);
        low[r * D + d] = Number(f[lCols[d]!]);
      }
    }
    if (grade && threshold) {
      grade[r] = Number(f[gCol]);
      threshold[r] = Number(f[tCol]);
    }
  }
  if (rows !== config.rows) throw new Error(`${name}: ${rows} rows, config says ${config.rows}`);
  return { config, inputs, score, high, low, grade, threshold };
}
