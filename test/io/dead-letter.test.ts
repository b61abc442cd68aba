import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeadLetterWriter } from '../../src/io/dead-letter.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dead-letter-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readEntries(path: string): Promise<unknown[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
}

describe('DeadLetterWriter', () => {
  it('writes one NDJSON entry per rejected record and counts them by kind', async () => {
    const path = join(dir, 'dead.ndjson');
    const writer = await DeadLetterWriter.open(path);
    writer.write({ line: 2, reason: 'missing field "value"', kind: 'missing field', input: '{"time":1}' });
    writer.write({ line: 5, reason: 'missing field "time"', kind: 'missing field', input: '{"value":1}' });
    writer.write({ line: 7, reason: 'line too long' });
    writer.write({
      line: 0,
      reason: 'malformed JSON: Unexpected end of JSON input',
      kind: 'malformed JSON',
      input: '{"time":',
      source: 'shardId-000000000001/49590338271490256608559692538361571095921575989136588898',
    });
    await writer.close();

    expect(await readEntries(path)).toEqual([
      { line: 2, reason: 'missing field "value"', input: '{"time":1}' },
      { line: 5, reason: 'missing field "time"', input: '{"value":1}' },
      { line: 7, reason: 'line too long' },
      {
        line: 0,
        reason: 'malformed JSON: Unexpected end of JSON input',
        input: '{"time":',
        source: 'shardId-000000000001/49590338271490256608559692538361571095921575989136588898',
      },
    ]);
    expect(writer.total).toBe(4);
    expect(Object.fromEntries(writer.counts)).toEqual({
      'missing field': 2,
      'line too long': 1,
      'malformed JSON': 1,
    });
  });

  it('round-trips awkward text exactly', async () => {
    const path = join(dir, 'dead.ndjson');
    const input = 'tab\t "quote" back\\slash \u2028 é 😀 \u0001';
    const writer = await DeadLetterWriter.open(path);
    writer.write({ line: 1, reason: 'not a JSON object (got string)', input });
    await writer.close();
    expect(await readEntries(path)).toEqual([{ line: 1, reason: 'not a JSON object (got string)', input }]);
  });

  it('writes invalid UTF-8 as base64', async () => {
    const path = join(dir, 'dead.ndjson');
    const raw = Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d);
    const writer = await DeadLetterWriter.open(path);
    writer.write({ line: 3, reason: 'invalid UTF-8', input: raw });
    await writer.close();
    const [entry] = (await readEntries(path)) as { inputBase64: string; input?: string }[];
    expect(entry).toEqual({ line: 3, reason: 'invalid UTF-8', inputBase64: 'e//+fQ==' });
    expect(Uint8Array.from(Buffer.from(entry.inputBase64, 'base64'))).toEqual(raw);
  });

  it('truncates inputs over 64 KiB without splitting characters', async () => {
    const path = join(dir, 'dead.ndjson');
    const writer = await DeadLetterWriter.open(path);
    const long = `${'a'.repeat(65535)}€tail`; // "€" is 3 bytes and would straddle the limit
    writer.write({ line: 1, reason: 'x', input: long });
    writer.write({ line: 2, reason: 'x', input: 'a'.repeat(65536) });
    writer.write({ line: 3, reason: 'x', input: new Uint8Array(70_000).fill(0xff) });
    await writer.close();
    const entries = (await readEntries(path)) as { input?: string; inputBase64?: string; truncated?: boolean }[];
    expect(entries[0]).toEqual({ line: 1, reason: 'x', input: 'a'.repeat(65535), truncated: true });
    expect(entries[1]).toEqual({ line: 2, reason: 'x', input: 'a'.repeat(65536) });
    expect(Buffer.from(entries[2].inputBase64 as string, 'base64').length).toBe(65536);
    expect(entries[2].truncated).toBe(true);
  });

  it('appends to an existing file by default, and can replace it', async () => {
    const path = join(dir, 'dead.ndjson');
    await writeFile(path, '{"line":1,"reason":"old"}\n');
    const appender = await DeadLetterWriter.open(path);
    appender.write({ line: 9, reason: 'new' });
    await appender.close();
    expect(await readEntries(path)).toEqual([
      { line: 1, reason: 'old' },
      { line: 9, reason: 'new' },
    ]);

    const replacer = await DeadLetterWriter.open(path, { flags: 'w' });
    replacer.write({ line: 4, reason: 'only' });
    await replacer.close();
    expect(await readEntries(path)).toEqual([{ line: 4, reason: 'only' }]);
  });

  it('creates an empty file when nothing is rejected', async () => {
    const path = join(dir, 'dead.ndjson');
    const writer = await DeadLetterWriter.open(path);
    await writer.close();
    expect(await readFile(path, 'utf8')).toBe('');
    expect(writer.total).toBe(0);
  });

  it('rejects a path that cannot be opened', async () => {
    await expect(DeadLetterWriter.open(join(dir, 'missing', 'dead.ndjson'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses writes after close', async () => {
    const writer = await DeadLetterWriter.open(join(dir, 'dead.ndjson'));
    await writer.close();
    await writer.close();
    expect(() => writer.write({ line: 1, reason: 'late' })).toThrow(/closed/);
  });

  it('surfaces a stream error on close and on later writes', async () => {
    const failing = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
      },
    });
    const writer = new DeadLetterWriter(failing);
    writer.write({ line: 1, reason: 'x' });
    await expect(writer.close()).rejects.toThrow('disk full');
    expect(() => writer.write({ line: 2, reason: 'y' })).toThrow('disk full');
  });

  it('can leave a shared stream open and lets callers wait for drain', async () => {
    const chunks: string[] = [];
    const shared = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        setTimeout(callback, 1);
      },
    });
    const writer = new DeadLetterWriter(shared, { endOnClose: false });
    expect(writer.write({ line: 1, reason: 'a long enough reason to fill the buffer' })).toBe(false);
    await writer.drain();
    expect(shared.writableNeedDrain).toBe(false);
    writer.write({ line: 2, reason: 'b' });
    await writer.close();
    expect(chunks.join('')).toBe('{"line":1,"reason":"a long enough reason to fill the buffer"}\n{"line":2,"reason":"b"}\n');
    expect(shared.writableEnded).toBe(false);
  });
});
