/**
 * `rcf-stream run` against kinesalite: what one record contains never stops the service
 * (it is dead-lettered with its reason and the service goes on), the stream-wide model
 * scope is refused over several open shards, and --exit-when-idle exits only once every
 * record was read and delivered.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createStream, putRaw, readOutput, runToEnd, useKinesalite } from './support.js';

const local = useKinesalite('rcf-contain-');

/** JSON text of an array nested `depth` levels deep: JSON.parse reads it, JSON.stringify of it overflows the stack. */
function nested(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

function normal(n: number, from = 0): string[] {
  const out: string[] = [];
  for (let t = from; t < from + n; t++) out.push(JSON.stringify({ time: t, value: 30 + (t % 7) / 10 }));
  return out;
}

const common = (input: string): string[] => ['--input-stream', input, '--kinesis-endpoint', local.kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', 'none', '--exit-when-idle', '0.3', '--time-field', 'time'];

describe('failure containment in run', () => {
  it('dead-letters a record nested 5,000 levels deep (--emit all), a lone surrogate and an oversize partition key, and goes on', async () => {
    await createStream(local.kinesis, 'deep-in', 1);
    await createStream(local.kinesis, 'deep-out', 1);
    const bodies = [
      ...normal(100),
      `{"time":100,"value":30.1,"extra":${nested(5000)}}`,
      // A lone surrogate in a string field and in the key: the output JSON escapes it, the partition key is made well-formed.
      '{"time":101,"value":30.2,"note":"\\ud800","sensor":"\\udc00x"}',
      // Its key field makes a 300-character partition key: cut to Kinesis's 256 characters.
      JSON.stringify({ time: 102, value: 30.3, sensor: 'k'.repeat(300) }),
      // Output over 1 MiB: dead-lettered as too large.
      JSON.stringify({ time: 103, value: 30.4, blob: 'x'.repeat(1024 * 1024 - 200) }),
      ...normal(100, 104),
    ];
    await putRaw(local.kinesis, 'deep-in', bodies.map((data, i) => ({ data, partitionKey: `p${i}` })));
    const dlq = join(local.dir, 'deep.dlq');
    const r = await runToEnd([...common('deep-in'), '--output-stream', 'deep-out', '--emit', 'all', '--dead-letter', dlq, '--output-partition-key', 'field:sensor']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.reason).toBe('idle');
    expect(r.stats.badRecordsByKind).toEqual({ unserialisable: 1, 'output too large': 1 });
    expect(r.stats.recordsScored).toBe(bodies.length);
    const out = await readOutput(local.kinesis, 'deep-out');
    expect(out).toHaveLength(bodies.length - 2);
    expect(out.map((o) => o.time)).toEqual([...Array.from({ length: 100 }, (_, t) => t), 101, 102, ...Array.from({ length: 100 }, (_, t) => t + 104)]);
    const surrogate = out.find((o) => o.time === 101)!;
    expect((surrogate as unknown as { note: string }).note).toBe('\ud800');
    expect(surrogate.$partitionKey).toBe('\ufffdx');
    expect([...out.find((o) => o.time === 102)!.$partitionKey]).toHaveLength(256);
    const letters = readFileSync(dlq, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; input?: string });
    expect(letters.map((l) => l.reason)).toEqual(['output record: too deeply nested to serialise', expect.stringMatching(/^output record is \d+ bytes with its partition key; Kinesis takes at most 1048576$/)]);
    expect(letters[0]!.input!.startsWith('{"time":100,')).toBe(true);
  }, 60_000);

  it('dead-letters an anomaly whose time field is nested 5,000 levels deep (--emit anomalies)', async () => {
    await createStream(local.kinesis, 'deeptime-in', 1);
    const bodies = [...normal(300), `{"time":${nested(5000)},"value":1000}`, ...normal(50, 301)];
    await putRaw(local.kinesis, 'deeptime-in', bodies.map((data) => ({ data, partitionKey: 'one' })));
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (d: Buffer) => (text += d.toString()));
    const r = await runToEnd([...common('deeptime-in'), '--emit', 'anomalies'], 30_000, { stdout });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stats.recordsScored).toBe(bodies.length);
    expect(r.stats.badRecordsByKind).toEqual({ unserialisable: 1 });
    // The reason (which may quote content) is logged at debug level only; the kind at warn.
    expect(r.stderr).toMatch(/bad record.*kind=unserialisable/);
    // The records after it were scored and their anomalies (if any) written.
    expect(text.includes('"value":1000')).toBe(false);
  }, 60_000);
});

describe('model scope', () => {
  it('refuses --model-scope stream over two open shards, with a message that says why and what to use', async () => {
    await createStream(local.kinesis, 'scope-in', 2);
    await putRaw(local.kinesis, 'scope-in', normal(400).map((data, i) => ({ data, partitionKey: `k${i}` })));
    const r = await runToEnd([...common('scope-in'), '--model-scope', 'stream'], 30_000, { stdout: new PassThrough() });
    expect(r.exitCode).toBe(1);
    expect(r.reason).toMatch(/--model-scope stream needs an input read one shard at a time.*Use --model-scope shard/);
  }, 60_000);

  it('refuses --model-scope key when one key arrives on two open shards', async () => {
    await createStream(local.kinesis, 'keyscope-in', 2);
    const bodies = normal(400).map((d, i) => JSON.stringify({ ...(JSON.parse(d) as object), sensor: `s${i % 3}` }));
    await putRaw(local.kinesis, 'keyscope-in', bodies.map((data, i) => ({ data, partitionKey: `random-${i}` })));
    const r = await runToEnd([...common('keyscope-in'), '--key-field', 'sensor', '--model-scope', 'key'], 30_000, { stdout: new PassThrough() });
    expect(r.exitCode).toBe(1);
    expect(r.reason).toMatch(/--model-scope key needs each key in one shard at a time/);
  }, 60_000);
});

describe('--exit-when-idle', () => {
  it('consumes every record of 200,000 on 2 shards before exiting, 5 times out of 5', async () => {
    const total = 200_000;
    await createStream(local.kinesis, 'idle-in', 2);
    const bodies = normal(total);
    // Only the count matters here, not the order within a key: several puts at a time.
    await putRaw(local.kinesis, 'idle-in', bodies.map((data, i) => ({ data, partitionKey: `k${i % 97}` })), 4);
    // Five independent consumers of the same 200,000 records, all at once (no checkpoints
    // shared): each must read and score every record before its idle exit.
    const runs = await Promise.all(
      Array.from({ length: 5 }, () => runToEnd([...common('idle-in'), '--exit-when-idle', '0.2', '--trees', '5', '--sample-size', '32'], 300_000, { stdout: new PassThrough() })),
    );
    for (const r of runs) {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.reason).toBe('idle');
      expect(r.stats.recordsRead).toBe(total);
      expect(r.stats.recordsScored).toBe(total);
    }
  }, 600_000);
});
