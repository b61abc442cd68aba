import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseDetectArgs, runDetect } from '../../src/cli/detect-command.js';
import type { PipelineRecord, ScoredBatch, Sink } from '../../src/pipeline/contracts.js';
import { ShardPipeline, comparePositions, type ShardPosition } from '../../src/pipeline/shard-pipeline.js';
import { mulberry32 } from '../../src/generate/temperature.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rcf-shardpipe-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Keeps what it is given. */
class CollectSink implements Sink {
  readonly name = 'collect';
  readonly lines: string[] = [];
  async deliver(batch: ScoredBatch): Promise<void> {
    for (const o of batch.outputs) this.lines.push(o.data.toString('utf8'));
  }
  async close(): Promise<void> {}
}

function records(n: number, keyed: boolean): { lines: string[]; records: PipelineRecord[] } {
  const random = mulberry32(5);
  const lines: string[] = [];
  const out: PipelineRecord[] = [];
  for (let i = 0; i < n; i++) {
    const value = random() < 0.02 ? 10 + 40 * random() : 30 + 2 * random();
    const line = JSON.stringify(keyed ? { time: i, value, sensor: `s${i % 3}` } : { time: i, value });
    lines.push(line);
    out.push({ shardId: 'shardId-000000000000', sequenceNumber: String(10n ** 20n + BigInt(i) * 7n), partitionKey: 'p', data: Buffer.from(line) });
  }
  return { lines, records: out };
}

/** Scores `detect` gives the lines, in order. */
async function detectScores(lines: string[], argv: string[]): Promise<number[]> {
  const input = join(dir, `in-${argv.length}.ndjson`);
  const output = join(dir, `out-${argv.length}.ndjson`);
  writeFileSync(input, `${lines.join('\n')}\n`);
  const config = parseDetectArgs([input, '--output', output, '--quiet', '--no-worker', ...argv])!;
  const stderr = new PassThrough();
  stderr.resume();
  const r = await runDetect(config, { stdin: new PassThrough(), stdout: new PassThrough(), stderr } as never);
  expect(r.exitCode).toBe(0);
  return readFileSync(output, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { score: number }).score);
}

describe('ShardPipeline (the batch API of one shard)', () => {
  for (const keyed of [false, true]) {
    it(`gives the scores of detect over the shard's records whatever the batch sizes, with state saved in between${keyed ? ' (keyed)' : ''}`, async () => {
      const argv = ['--trees', '20', '--sample-size', '64', '--time-field', 'time', ...(keyed ? ['--key-field', 'sensor'] : [])];
      const { lines, records: all } = records(1200, keyed);
      const expected = await detectScores(lines, argv);
      const settings = parseDetectArgs(argv)!;
      const sink = new CollectSink();
      const random = mulberry32(11);
      let state: { models: Uint8Array; last: ShardPosition | undefined } | undefined;
      for (let at = 0; at < all.length; ) {
        const size = 1 + Math.floor(random() * 150);
        // Every batch starts from the saved state, as a fresh Lambda container would; batches overlap the last one.
        const from = Math.max(0, at - Math.floor(random() * 20));
        const pipeline = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [sink], state, emit: 'all' });
        const r = await pipeline.processBatch(all.slice(from, at + size));
        expect(r.skipped).toBe(at - from);
        state = { models: pipeline.snapshot(), last: r.last };
        pipeline.dispose();
        at += size;
      }
      expect(sink.lines.map((l) => (JSON.parse(l) as { score: number }).score)).toEqual(expected);
    }, 60_000);
  }

  it('skips a replayed batch entirely and leaves the state as it was', async () => {
    const settings = parseDetectArgs(['--trees', '10', '--sample-size', '32'])!;
    const { records: all } = records(100, false);
    const sink = new CollectSink();
    const first = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [sink], emit: 'all' });
    const r1 = await first.processBatch(all);
    const m1 = first.snapshot();
    const again = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [sink], emit: 'all', state: { models: m1, last: r1.last } });
    const r2 = await again.processBatch(all);
    expect(r2.skipped).toBe(100);
    expect(r2.scored.outputs).toEqual([]);
    expect(r2.last).toEqual(r1.last);
    expect(Buffer.from(again.snapshot()).equals(Buffer.from(m1))).toBe(true);
    expect(sink.lines).toHaveLength(100);
  });

  it('delivers through the sinks named per call, and one batch in steps leaves the models of one call', async () => {
    const settings = parseDetectArgs(['--trees', '10', '--sample-size', '32'])!;
    const { records: all } = records(300, false);
    const own = new CollectSink();
    const whole = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [own], emit: 'all' });
    await whole.processBatch(all);
    const stepped = new CollectSink();
    const unused = new CollectSink();
    const steps = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [unused], emit: 'all' });
    for (let at = 0; at < all.length; at += 70) await steps.processBatch(all.slice(at, at + 70), { sinks: [stepped] });
    expect(unused.lines).toEqual([]);
    expect(stepped.lines).toEqual(own.lines);
    expect(steps.last).toEqual(whole.last);
    expect(Buffer.from(steps.snapshot()).equals(Buffer.from(whole.snapshot()))).toBe(true);
    whole.dispose();
    steps.dispose();
  });

  it('rejects when a sink rejects', async () => {
    const settings = parseDetectArgs(['--trees', '10', '--sample-size', '32'])!;
    const failing: Sink = { name: 'down', deliver: () => Promise.reject(new Error('down for good')), close: async () => undefined };
    const p = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [failing], emit: 'all' });
    await expect(p.processBatch(records(10, false).records)).rejects.toThrow('down for good');
  });

  it('orders positions by sequence number, then sub-sequence', () => {
    expect(comparePositions({ sequenceNumber: '9' }, { sequenceNumber: '10' })).toBeLessThan(0);
    expect(comparePositions({ sequenceNumber: '10', subSequence: 2 }, { sequenceNumber: '10', subSequence: 1 })).toBeGreaterThan(0);
    expect(comparePositions({ sequenceNumber: '10' }, { sequenceNumber: '10', subSequence: 0 })).toBeLessThan(0);
  });
});
