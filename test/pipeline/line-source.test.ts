/**
 * LineSource (src/pipeline/line-source.ts): the lines of a file or stdin as pipeline
 * batches with their positions; and those batches through the BatchProcessor's 'lines'
 * output, as `detect` runs them.
 */
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LINE_PARTITION, LineSource, type LineBatch } from '../../src/pipeline/line-source.js';
import { BatchProcessor } from '../../src/pipeline/batch-processor.js';
import { ScopedModels } from '../../src/pipeline/scoped-models.js';
import { createRecordParser } from '../../src/io/record-parser.js';
import { parseDetectArgs } from '../../src/cli/detect-command.js';

function chunks(...parts: (string | Uint8Array)[]): Readable {
  return Readable.from(parts.map((p) => Buffer.from(p)));
}

async function collect(source: LineSource): Promise<LineBatch[]> {
  const out: LineBatch[] = [];
  for await (const batch of source.start()) out.push(batch);
  return out;
}

describe('LineSource', () => {
  it('yields full batches, each record with its line number and byte offset, each batch with the position after it', async () => {
    const lines = Array.from({ length: 12 }, (_, i) => `{"v":${i}}`);
    // One chunk: everything is there at once, so only full batches and the rest at the end.
    const source = new LineSource(chunks(`${lines.join('\n')}\n`), { batchRecords: 5 });
    const batches = await collect(source);
    expect(batches.map((b) => b.records.length)).toEqual([5, 5, 2]);
    expect(batches.flatMap((b) => b.records.map((r) => r.line))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const second = batches[1]!;
    expect(second.records[0]).toMatchObject({ line: 6, byteOffset: 5 * 8, byteLength: 7, text: '{"v":5}', shardId: LINE_PARTITION, sequenceNumber: '6' });
    expect(second.end).toEqual({ line: 10, byteOffset: 9 * 8 + 7 });
    expect(second.checkpoint).toEqual({ sequenceNumber: '10' });
    expect(batches.map((b) => b.shardEnded)).toEqual([false, false, true]);
    expect(source.ended).toBe(true);
    expect(source.linesRead).toBe(12);
    expect(source.bytesRead).toBe(10 * 8 + 2 * 9);
  });

  it('hands over what it has as soon as the input pauses (a live stream is not held back for a full batch)', async () => {
    const input = new PassThrough();
    const source = new LineSource(input);
    const it = source.start()[Symbol.asyncIterator]();
    input.write('{"v":1}\n{"v":2}\n');
    // The input stays open: this batch can only come from the pause.
    const first = await it.next();
    expect(first.done).toBe(false);
    expect((first.value as LineBatch).records.map((r) => r.text)).toEqual(['{"v":1}', '{"v":2}']);
    input.end('{"v":3}');
    const second = await it.next();
    expect((second.value as LineBatch).records.map((r) => [r.line, r.text])).toEqual([[3, '{"v":3}']]);
    expect((await it.next()).done).toBe(true);
  });

  it('keeps lines it cannot read as records, in line order: too long (with the reason) and invalid UTF-8 (with the bytes)', async () => {
    const bad = Buffer.from([0x7b, 0xff, 0x7d]);
    const source = new LineSource(chunks('{"v":1}\n', `{"v":"${'x'.repeat(20)}"}\n`, bad, '\n\n{"v":4}\n'), { maxLineBytes: 16 });
    const records = (await collect(source)).flatMap((b) => b.records);
    expect(records.map((r) => r.line)).toEqual([1, 2, 3, 5]);
    expect(records[1]).toMatchObject({ text: undefined, rejected: { reason: 'line too long (28 bytes; the limit is 16)', kind: 'line too long' } });
    expect(records[2]!.rejected).toBeUndefined();
    expect(records[2]!.text).toBeUndefined();
    expect(Buffer.from(records[2]!.data).equals(bad)).toBe(true);
    expect(source.linesRead).toBe(5);
  });

  it('takes the first readable line as the CSV header: lines before it come in their own batch, the header with the records after it', async () => {
    const source = new LineSource(chunks(Buffer.from([0xff, 0x0a]), 'time,value\n1,2\n3,4\n'), { header: true });
    const batches = await collect(source);
    expect(batches).toHaveLength(2);
    expect(batches[0]!.header).toBeUndefined();
    expect(batches[0]!.records.map((r) => r.line)).toEqual([1]);
    expect(batches[1]!.header).toEqual({ text: 'time,value', line: 2 });
    expect(batches[1]!.records.map((r) => r.text)).toEqual(['1,2', '3,4']);
  });

  it('yields a header even when no record follows it (so a wrong header is still found)', async () => {
    const batches = await collect(new LineSource(chunks('time,value\n'), { header: true }));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.header).toEqual({ text: 'time,value', line: 1 });
    expect(batches[0]!.records).toEqual([]);
  });

  it('ends without an error when stopped, counting the lines handed over', async () => {
    const input = new PassThrough();
    const source = new LineSource(input);
    const it = source.start()[Symbol.asyncIterator]();
    input.write('{"v":1}\n{"v":2}\n{"v":');
    expect(((await it.next()).value as LineBatch).records).toHaveLength(2);
    const next = it.next();
    await source.stop();
    expect((await next).done).toBe(true);
    expect(source.ended).toBe(false);
    expect(source.linesRead).toBe(2);
  });

  it('passes on a read error', async () => {
    const input = new PassThrough();
    const source = new LineSource(input);
    const it = source.start()[Symbol.asyncIterator]();
    const next = it.next();
    input.destroy(new Error('disk on fire'));
    await expect(next).rejects.toThrow('disk on fire');
  });
});

describe('LineSource batches through the BatchProcessor (lines output)', () => {
  const settings = parseDetectArgs(['--trees', '10', '--sample-size', '16', '--time-field', 't'])!;

  async function processorOf(parser?: ReturnType<typeof createRecordParser>, notify = false): Promise<BatchProcessor> {
    const models = new ScopedModels('shard', { forest: settings.forest, threshold: settings.threshold, attribution: false, keyed: false });
    await models.prepare(LINE_PARTITION);
    return new BatchProcessor({ settings, models, emit: 'all', output: 'lines', parser, notifications: notify ? {} : undefined });
  }

  it('splices the results into each NDJSON line as written, and sets bad lines aside by line number', async () => {
    const input = ['{"t":1, "value":30.10}', '{"t":2}', '{"t":3,"value":1e999}', '{"t":4,"value":30.20}'].join('\n');
    const [batch] = await collect(new LineSource(chunks(`${input}\n`, Buffer.from([0xff, 0x0a]), `{"t":6,"value":"${'x'.repeat(40)}"}\n`), { maxLineBytes: 30 }));
    const scored = (await processorOf()).process(LINE_PARTITION, batch!.records);
    expect(scored.scored).toBe(2);
    expect(scored.outputs).toEqual([]);
    expect(scored.lines!.count).toBe(2);
    // The input's own text (its space, its "30.10") stays; no record id is added.
    expect(Buffer.from(scored.lines!.data).toString()).toBe('{"t":1, "value":30.10,"score":0,"anomaly":false}\n{"t":4,"value":30.20,"score":0,"anomaly":false}\n');
    expect(scored.deadLetters.map((d) => [d.letter.line, d.letter.kind, d.letter.source])).toEqual([
      [2, 'missing field', undefined],
      [3, 'not finite', undefined],
      [5, 'invalid UTF-8', undefined],
      [6, 'line too long', undefined],
    ]);
    expect(scored.deadLetters[3]!.letter.reason).toBe('line too long (58 bytes; the limit is 30)');
  });

  it('parses CSV rows with the header\'s parser and writes them as JSON objects', async () => {
    const batches = await collect(new LineSource(chunks('t,value\n1,30.5\n2,x\n'), { header: true }));
    const parser = createRecordParser('csv', settings.mapping, batches[0]!.header!.text);
    const scored = (await processorOf(parser)).process(LINE_PARTITION, batches[0]!.records);
    expect(Buffer.from(scored.lines!.data).toString()).toBe('{"t":1,"value":30.5,"score":0,"anomaly":false}\n');
    expect(scored.deadLetters.map((d) => [d.letter.line, d.letter.input])).toEqual([[3, '2,x']]);
  });

  it('sets aside a scored record whose notification cannot be made, marked as scored', async () => {
    const normal = Array.from({ length: 200 }, (_, i) => `{"t":${i},"value":${30 + (i % 3) / 10}}`);
    const deep = `{"t":${'['.repeat(5000)}${']'.repeat(5000)},"value":5000}`;
    const [batch] = await collect(new LineSource(chunks(`${[...normal, deep].join('\n')}\n`)));
    const scored = (await processorOf(undefined, true)).process(LINE_PARTITION, batch!.records);
    expect(scored.scored).toBe(201);
    const letter = scored.deadLetters.at(-1)!;
    expect(letter).toMatchObject({ letter: { line: 201, reason: 'notification: too deeply nested to serialise', kind: 'unserialisable' }, scored: { anomaly: true } });
    expect(scored.lines!.count).toBe(200);
    expect(Buffer.from(scored.lines!.data).toString()).not.toContain('"value":5000');
  });
});
