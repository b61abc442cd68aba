import { describe, expect, it } from 'vitest';
import { batchStats, emfLines, statsDelta } from '../../src/metrics/emf.js';
import { parseDetectArgs } from '../../src/cli/detect-command.js';
import type { PipelineRecord, ScoredBatch, Sink } from '../../src/pipeline/contracts.js';
import { ShardPipeline } from '../../src/pipeline/shard-pipeline.js';

describe('emfLines', () => {
  it('writes one EMF line with every counter, and one per bad-record kind', () => {
    const lines = emfLines(
      {
        recordsRead: 12,
        recordsScored: 10,
        anomalies: 1,
        badRecords: 2,
        badRecordsByKind: { 'malformed JSON': 1, 'invalid UTF-8': 1 },
        deadLettered: { file: 0, stream: 2 },
        notifications: { queued: 1, suppressed: 0, dropped: 0 },
        sns: { published: 1, suppressed: 0, dropped: 0, failed: 0, summariesQueued: 0 },
        checkpoints: { saved: 1, failed: 0 },
        models: 3,
        evictions: 0,
        source: { millisBehindLatest: { a: 10, b: 250 } },
      },
      { timestamp: 1_700_000_000_000, dimensions: { FunctionName: 'detector' } },
    );
    expect(lines).toHaveLength(3);
    const main = JSON.parse(lines[0]!) as Record<string, unknown> & { _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } };
    expect(main._aws.Timestamp).toBe(1_700_000_000_000);
    const directive = main._aws.CloudWatchMetrics[0]!;
    expect(directive.Namespace).toBe('rcf-stream');
    expect(directive.Dimensions).toEqual([['FunctionName']]);
    expect(main['FunctionName']).toBe('detector');
    // Every declared metric has its value on the line.
    for (const { Name } of directive.Metrics) expect(typeof main[Name]).toBe('number');
    expect(main['RecordsScored']).toBe(10);
    expect(main['DeadLetters']).toBe(2);
    expect(main['NotificationsSent']).toBe(1);
    expect(main['MillisBehindLatest']).toBe(250);
    expect(directive.Metrics.find((x) => x.Name === 'MillisBehindLatest')!.Unit).toBe('Milliseconds');
    const kinds = lines.slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(kinds.map((k) => [k['Kind'], k['BadRecordsByKind'], k['FunctionName']])).toEqual([
      ['invalid UTF-8', 1, 'detector'],
      ['malformed JSON', 1, 'detector'],
    ]);
  });

  it('leaves out what the caller does not have, and refuses bad options', () => {
    const [only] = emfLines({ recordsScored: 5 }, { timestamp: 1 });
    const parsed = JSON.parse(only!) as { _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: unknown[] }[] } };
    expect(parsed._aws.CloudWatchMetrics[0]!.Metrics).toEqual([{ Name: 'RecordsScored', Unit: 'Count' }]);
    expect(parsed._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([[]]);
    expect(emfLines({}, { timestamp: 1 })).toEqual([]);
    expect(() => emfLines({ recordsScored: 1 }, { timestamp: Number.NaN })).toThrow(RangeError);
    expect(() => emfLines({ recordsScored: 1 }, { timestamp: 1, dimensions: { Kind: 'x' } })).toThrow(RangeError);
  });
});

describe('statsDelta', () => {
  it('turns running totals into what one invocation did', () => {
    const d = statsDelta(
      { recordsScored: 100, anomalies: 2, badRecordsByKind: { a: 1 }, checkpoints: { saved: 3, failed: 0 }, models: 2 },
      { recordsScored: 150, anomalies: 2, badRecordsByKind: { a: 1, b: 4 }, checkpoints: { saved: 4, failed: 1 }, models: 3 },
    );
    expect(d).toMatchObject({ recordsScored: 50, anomalies: 0, badRecordsByKind: { b: 4 }, checkpoints: { saved: 1, failed: 1 }, models: 3 });
  });
});

describe('batchStats', () => {
  it("turns one ShardPipeline batch (a Lambda invocation) into EMF counters: records, scored, anomalies, output, bad records by kind", async () => {
    const settings = parseDetectArgs(['--trees', '10', '--sample-size', '32'])!;
    const kept: ScoredBatch[] = [];
    const sink: Sink = { name: 'keep', deliver: async (b) => void kept.push(b), close: async () => undefined };
    const pipeline = await ShardPipeline.create({ settings, shardId: 'shardId-000000000000', sinks: [sink], emit: 'all' });
    const records: PipelineRecord[] = [];
    const body = (i: number): string => (i === 40 ? 'not json' : i === 41 ? '{"value":"x"}' : JSON.stringify({ value: 30 + (i % 3) }));
    for (let i = 0; i < 60; i++) records.push({ shardId: 'shardId-000000000000', sequenceNumber: String(1000 + i), partitionKey: 'p', data: Buffer.from(body(i)) });
    try {
      const r = await pipeline.processBatch(records);
      const lines = emfLines(batchStats(r.scored), { timestamp: 1_700_000_000_000, dimensions: { FunctionName: 'f' } });
      const main = JSON.parse(lines[0]!) as Record<string, number>;
      expect(main['RecordsRead']).toBe(60);
      expect(main['RecordsScored']).toBe(58);
      expect(main['OutputRecords']).toBe(58);
      expect(main['BadRecords']).toBe(2);
      expect(main['Anomalies']).toBe(r.scored.anomalies);
      const kinds = lines.slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(kinds.map((k) => k['BadRecordsByKind'])).toEqual([1, 1]);
      expect(new Set(kinds.map((k) => k['Kind'])).size).toBe(2);
      expect(kinds.map((k) => k['Kind'])).toContain('malformed JSON');
    } finally {
      pipeline.dispose();
    }
  });
});
