/**
 * Benchmark row for issue 13: `detect --threshold auto` (the quality grader, with timestamps,
 * so the time-of-day context and time suppression run) against `detect --threshold 3` on the
 * same file, in-process, alternating the two so machine load falls on both alike. Target:
 * auto >= 0.8x the fixed threshold's rate. The file is the reference temperature stream with
 * ISO-8601 times one minute apart.
 *
 *   node dist/bench/quality.js [--quick]      (after `npm run build`)
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { TemperatureSeries } from '../src/generate/temperature.js';
import { parseDetectArgs, runDetect } from '../src/cli/detect-command.js';

export interface QualityBenchResult {
  name: string;
  records: number;
  runs: number;
  /** Median records/s of `detect FILE --time-field time --threshold 3`. */
  fixedRecordsPerSecond: number;
  /** Median records/s of `detect FILE --time-field time --threshold auto`. */
  autoRecordsPerSecond: number;
  /** auto / fixed (target >= 0.8). */
  ratio: number;
  /** Anomalies each reported (a sanity check that both ran their strategy). */
  fixedAnomalies: number;
  autoAnomalies: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function timeDetect(file: string, threshold: string): Promise<{ seconds: number; records: number; anomalies: number }> {
  const config = parseDetectArgs([file, '--quiet', '--time-field', 'time', '--threshold', threshold, '--engine', 'wasm'])!;
  const sink = createWriteStream('/dev/null', { highWaterMark: 1024 * 1024 });
  const stderr = new PassThrough();
  stderr.resume();
  const started = performance.now();
  const result = await runDetect(config, { stdin: new PassThrough(), stdout: sink, stderr });
  const seconds = (performance.now() - started) / 1000;
  sink.end();
  if (result.exitCode !== 0) throw new Error(`detect --threshold ${threshold} failed with exit ${result.exitCode}`);
  return { seconds, records: result.stats.records, anomalies: result.stats.anomalies };
}

export async function benchQuality(options: { quick?: boolean } = {}): Promise<QualityBenchResult> {
  const records = options.quick ? 20_000 : 100_000;
  const runs = options.quick ? 3 : 5;
  const dir = await mkdtemp(join(tmpdir(), 'rcf-bench-quality-'));
  try {
    const file = join(dir, 'stream.ndjson');
    const series = new TemperatureSeries({ count: records, seed: 42 });
    const start = Date.UTC(2024, 0, 1);
    const lines: string[] = [];
    for (let i = 0; series.advance(); i++) lines.push(`{"time":"${new Date(start + i * 60_000).toISOString()}","value":${series.value}}`);
    await writeFile(file, `${lines.join('\n')}\n`);
    const fixed: number[] = [];
    const auto: number[] = [];
    let fixedAnomalies = 0;
    let autoAnomalies = 0;
    await timeDetect(file, '3'); // warm-up: kernel compile, JIT
    for (let run = 0; run < runs; run++) {
      const f = await timeDetect(file, '3');
      const a = await timeDetect(file, 'auto');
      if (f.records !== records || a.records !== records) throw new Error('detect did not read every record');
      fixed.push(records / f.seconds);
      auto.push(records / a.seconds);
      fixedAnomalies = f.anomalies;
      autoAnomalies = a.anomalies;
    }
    const fixedRecordsPerSecond = median(fixed);
    const autoRecordsPerSecond = median(auto);
    return {
      name: 'detect --threshold auto vs --threshold 3 (1-D, 50 trees, ISO times)',
      records,
      runs,
      fixedRecordsPerSecond,
      autoRecordsPerSecond,
      ratio: median(auto.map((a, i) => a / fixed[i]!)),
      fixedAnomalies,
      autoAnomalies,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatQuality(r: QualityBenchResult): string {
  const rate = (x: number): string => Math.round(x).toLocaleString('en-US');
  return [
    `Quality grader (${r.name}), ${r.records.toLocaleString('en-US')} records, median of ${r.runs} runs:`,
    `  --threshold 3     ${rate(r.fixedRecordsPerSecond)} records/s (${r.fixedAnomalies} anomalies)`,
    `  --threshold auto  ${rate(r.autoRecordsPerSecond)} records/s (${r.autoAnomalies} anomalies)`,
    `  ratio auto/fixed  ${r.ratio.toFixed(2)} (target >= 0.80)`,
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  benchQuality({ quick: process.argv.includes('--quick') })
    .then((r) => process.stdout.write(`${formatQuality(r)}\n`))
    .catch((error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 1;
    });
}
