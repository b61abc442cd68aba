import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_LINE_BYTES, type Line, LineReader } from '../../src/io/line-reader.js';

function source(...chunks: (string | Uint8Array)[]): Readable {
  return Readable.from(chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk))));
}

async function collect(reader: LineReader): Promise<Line[]> {
  const lines: Line[] = [];
  for await (const line of reader) lines.push(line);
  return lines;
}

/** Lines reduced to what the tests compare. */
function summary(lines: Line[]): [number, string][] {
  return lines.map((line) => [line.lineNumber, line.error ?? (line.text as string)]);
}

describe('LineReader', () => {
  it('splits LF and CRLF lines and reports offsets', async () => {
    const lines = await collect(new LineReader(source('a\nbc\r\ndef\n')));
    expect(lines).toEqual([
      { lineNumber: 1, byteOffset: 0, byteLength: 1, text: 'a' },
      { lineNumber: 2, byteOffset: 2, byteLength: 2, text: 'bc' },
      { lineNumber: 3, byteOffset: 6, byteLength: 3, text: 'def' },
    ]);
  });

  it('yields a final line without a newline, with or without a trailing CR', async () => {
    expect(summary(await collect(new LineReader(source('x\ny'))))).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
    expect(summary(await collect(new LineReader(source('x\r\ny\r'))))).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
  });

  it('yields nothing for empty input', async () => {
    const reader = new LineReader(source());
    expect(await collect(reader)).toEqual([]);
    expect(reader.bytesRead).toBe(0);
    expect(await collect(new LineReader(source('')))).toEqual([]);
  });

  it('skips empty lines but counts them', async () => {
    const reader = new LineReader(source('\n\r\na\n\n\nb\n\r\n'));
    expect(summary(await collect(reader))).toEqual([
      [3, 'a'],
      [6, 'b'],
    ]);
    expect(reader.lineNumber).toBe(7);
  });

  it('gives the same lines however the input is split into chunks', async () => {
    const text = '{"v":"é€😀"}\r\n\n{"v":2}\r\nlast é';
    const bytes = Buffer.from(text);
    const expected = [
      { lineNumber: 1, byteOffset: 0, byteLength: bytes.indexOf('\r'), text: '{"v":"é€😀"}' },
      { lineNumber: 3, byteOffset: bytes.indexOf('{"v":2}'), byteLength: 7, text: '{"v":2}' },
      { lineNumber: 4, byteOffset: bytes.indexOf('last'), byteLength: 7, text: 'last é' },
    ];
    // Every single split point: inside multibyte characters, between CR and LF, ...
    for (let cut = 0; cut <= bytes.length; cut++) {
      const lines = await collect(new LineReader(source(bytes.subarray(0, cut), bytes.subarray(cut))));
      expect(lines, `split at byte ${cut}`).toEqual(expected);
    }
    // ... and one byte per chunk.
    const oneByOne = Array.from(bytes, (byte) => Uint8Array.of(byte));
    expect(await collect(new LineReader(source(...oneByOne)))).toEqual(expected);
  });

  it('handles a CRLF split across chunks', async () => {
    expect(summary(await collect(new LineReader(source('ab\r', '\ncd\r', '\n'))))).toEqual([
      [1, 'ab'],
      [2, 'cd'],
    ]);
  });

  it('accepts string chunks', async () => {
    const strings = Readable.from(['a\nb', 'c\n'], { objectMode: true });
    expect(summary(await collect(new LineReader(strings)))).toEqual([
      [1, 'a'],
      [2, 'bc'],
    ]);
  });

  it('reports invalid UTF-8 per line with the raw bytes, neighbours intact', async () => {
    const bad = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const truncatedChar = Buffer.from([0x61, 0xe2, 0x82]); // "a" + first two bytes of "€"
    const input = Buffer.concat([Buffer.from('ok1\n'), bad, Buffer.from('\r\nok2\n'), truncatedChar]);
    const lines = await collect(new LineReader(source(input)));
    expect(summary(lines)).toEqual([
      [1, 'ok1'],
      [2, 'invalid UTF-8'],
      [3, 'ok2'],
      [4, 'invalid UTF-8'],
    ]);
    expect(Buffer.from(lines[1].raw as Uint8Array)).toEqual(bad);
    expect(lines[1]).toMatchObject({ byteOffset: 4, byteLength: 4 });
    expect(Buffer.from(lines[3].raw as Uint8Array)).toEqual(truncatedChar);
  });

  it('drops a leading byte order mark', async () => {
    expect(summary(await collect(new LineReader(source('\uFEFFtime,value\n1,2\n'))))).toEqual([
      [1, 'time,value'],
      [2, '1,2'],
    ]);
  });

  it('applies the length limit to the line without its terminator', async () => {
    const reader = new LineReader(source('12345\n123456\n12345\r\n123456\r\n', '1234', '5\r', '\n', '123456'), {
      maxLineBytes: 5,
    });
    const lines = await collect(reader);
    expect(summary(lines)).toEqual([
      [1, '12345'],
      [2, 'line too long'],
      [3, '12345'],
      [4, 'line too long'],
      [5, '12345'],
      [6, 'line too long'],
    ]);
    expect(lines[1]).toMatchObject({ byteOffset: 6, byteLength: 6 });
    expect(lines[3]).toMatchObject({ byteLength: 6 });
    expect(lines[5]).toMatchObject({ byteLength: 6 });
    expect(lines[5].raw).toBeUndefined();
  });

  it('reports a line over the limit that spans many chunks', async () => {
    const chunks = ['ok\nxx', 'xxxx', 'xxxx', 'x\r', '\nafter\n'];
    const lines = await collect(new LineReader(source(...chunks), { maxLineBytes: 5 }));
    expect(lines).toEqual([
      { lineNumber: 1, byteOffset: 0, byteLength: 2, text: 'ok' },
      { lineNumber: 2, byteOffset: 3, byteLength: 11, error: 'line too long' },
      { lineNumber: 3, byteOffset: 16, byteLength: 5, text: 'after' },
    ]);
  });

  it('rejects a bad limit', () => {
    expect(() => new LineReader(source(), { maxLineBytes: 0 })).toThrow(RangeError);
    expect(() => new LineReader(source(), { maxLineBytes: 1.5 })).toThrow(/maxLineBytes/);
  });

  it('can only be iterated once', async () => {
    const reader = new LineReader(source('a\n'));
    await collect(reader);
    expect(() => reader[Symbol.asyncIterator]()).toThrow(/once/);
  });

  describe('a 2 MiB line in a file', () => {
    let dir: string;
    let path: string;
    const hugeLength = 2 * 1024 * 1024;
    const before = '{"time":0,"value":30.12}';
    const after = '{"time":2,"value":29.5}';

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'line-reader-'));
      path = join(dir, 'input.ndjson');
      const out = createWriteStream(path);
      out.write(`${before}\n\n`);
      out.write(`{"time":1,"value":"${'9'.repeat(hugeLength - 21)}"}\r\n`);
      out.end(`${after}\n`);
      await once(out, 'close');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('is reported without disturbing its neighbours', async () => {
      const reader = new LineReader(createReadStream(path));
      const lines = await collect(reader);
      expect(lines).toEqual([
        { lineNumber: 1, byteOffset: 0, byteLength: before.length, text: before },
        { lineNumber: 3, byteOffset: before.length + 2, byteLength: hugeLength, error: 'line too long' },
        {
          lineNumber: 4,
          byteOffset: before.length + 2 + hugeLength + 2,
          byteLength: after.length,
          text: after,
        },
      ]);
      expect(reader.bytesRead).toBe(before.length + 2 + hugeLength + 2 + after.length + 1);
      expect(hugeLength).toBeGreaterThan(DEFAULT_MAX_LINE_BYTES);
    });

    it('is reported when it arrives as a single chunk', async () => {
      const huge = 'x'.repeat(hugeLength);
      const lines = await collect(new LineReader(source(`a\n${huge}\nb`)));
      expect(summary(lines)).toEqual([
        [1, 'a'],
        [2, 'line too long'],
        [3, 'b'],
      ]);
    });
  });

  it('counts bytes read while lines are consumed', async () => {
    const reader = new LineReader(source('aaa\n', 'bb\n'));
    const seen: number[] = [];
    for await (const _line of reader) seen.push(reader.bytesRead);
    expect(seen).toEqual([4, 7]);
  });
});

describe('LineReader.batches', () => {
  async function collectBatches(reader: LineReader): Promise<Line[][]> {
    const batches: Line[][] = [];
    for await (const lines of reader.batches()) batches.push(lines);
    return batches;
  }

  /** Lines through the one-at-a-time iterator, for comparison. */
  async function oneByOne(chunks: (string | Uint8Array)[], maxLineBytes?: number): Promise<Line[]> {
    return collect(new LineReader(source(...chunks), { maxLineBytes }));
  }

  it('yields the lines of each chunk together, never an empty batch', async () => {
    const batches = await collectBatches(new LineReader(source('a\nb\n', '\n\n', 'c\r', '\nd')));
    expect(batches.map((lines) => summary(lines))).toEqual([
      [
        [1, 'a'],
        [2, 'b'],
      ],
      [[5, 'c']],
      [[6, 'd']],
    ]);
  });

  it('gives the same lines as iterating the reader, however the input is split', async () => {
    const bad = Buffer.from([0x7b, 0xff, 0x7d]);
    const bytes = Buffer.concat([
      Buffer.from('{"a":1}\r\n\n\uFEFF{"v":"é€😀"}\n'),
      bad,
      Buffer.from('\r\n\uFEFF\n\uFEFF\uFEFFx\nplain ascii\r\n123456789\nlast é'),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
      const expected = await oneByOne(chunks, 8);
      const batches = await collectBatches(new LineReader(source(...chunks), { maxLineBytes: 8 }));
      expect(batches.flat(), `split at byte ${cut}`).toEqual(expected);
      expect(batches.every((lines) => lines.length > 0)).toBe(true);
    }
    const single = Array.from(bytes, (byte) => Uint8Array.of(byte));
    expect((await collectBatches(new LineReader(source(...single), { maxLineBytes: 8 }))).flat()).toEqual(await oneByOne(single, 8));
  });

  it('reports invalid UTF-8 inside a batch per line, with its raw bytes', async () => {
    const bad = Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]); // an encoded surrogate
    const input = Buffer.concat([Buffer.from('ok1\né\n'), bad, Buffer.from('\r\n\uFEFFok2\n\uFEFF\nok3\n')]);
    const batches = await collectBatches(new LineReader(source(input)));
    expect(batches).toHaveLength(1);
    expect(batches[0]).toEqual([
      { lineNumber: 1, byteOffset: 0, byteLength: 3, text: 'ok1' },
      { lineNumber: 2, byteOffset: 4, byteLength: 2, text: 'é' },
      { lineNumber: 3, byteOffset: 7, byteLength: 5, error: 'invalid UTF-8', raw: expect.anything() },
      { lineNumber: 4, byteOffset: 14, byteLength: 6, text: 'ok2' },
      { lineNumber: 6, byteOffset: 25, byteLength: 3, text: 'ok3' },
    ]);
    expect(Buffer.from(batches[0]![2]!.raw as Uint8Array)).toEqual(bad);
  });

  it('keeps a leading byte order mark beyond the first, as the decoder does', async () => {
    const batches = await collectBatches(new LineReader(source('\uFEFF\uFEFFa\n\uFEFFé\n\uFEFF\n')));
    expect(summary(batches.flat())).toEqual([
      [1, '\uFEFFa'],
      [2, 'é'],
    ]);
  });

  it('cuts a large ASCII chunk into the same lines and offsets', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `{"time":${i},"value":${(i * 0.37).toFixed(2)}}${i % 3 === 0 ? '\r' : ''}`);
    const text = `${lines.join('\n')}\n`;
    expect(text.length).toBeGreaterThan(256 * 1024);
    const batches = await collectBatches(new LineReader(source(text)));
    expect(batches).toHaveLength(1);
    let offset = 0;
    const expected = lines.map((withCr, i) => {
      const line = withCr.replace('\r', '');
      const expectedLine = { lineNumber: i + 1, byteOffset: offset, byteLength: line.length, text: line };
      offset += withCr.length + 1;
      return expectedLine;
    });
    expect(batches[0]).toEqual(expected);
  });

  it('reports over-long lines inside a chunk, ASCII or not', async () => {
    const batches = await collectBatches(new LineReader(source('123456\nok\n12345\r\n', 'é23456\né\n'), { maxLineBytes: 5 }));
    expect(batches.map((lines) => summary(lines))).toEqual([
      [
        [1, 'line too long'],
        [2, 'ok'],
        [3, '12345'],
      ],
      [
        [4, 'line too long'],
        [5, 'é'],
      ],
    ]);
    expect(batches[1]![0]).toEqual({ lineNumber: 4, byteOffset: 17, byteLength: 7, error: 'line too long' });
  });

  it('counts lines and bytes a chunk at a time', async () => {
    const reader = new LineReader(source('a\n\nb\n\n', 'c'));
    const seen: [number, number][] = [];
    for await (const _lines of reader.batches()) seen.push([reader.lineNumber, reader.bytesRead]);
    expect(seen).toEqual([
      [4, 6],
      [5, 7],
    ]);
  });

  it('shares single use with the line iterator', async () => {
    const reader = new LineReader(source('a\n'));
    reader.batches();
    expect(() => reader[Symbol.asyncIterator]()).toThrow(/once/);
    expect(() => reader.batches()).toThrow(/once/);
    const other = new LineReader(source('a\n'));
    await collect(other);
    expect(() => other.batches()).toThrow(/once/);
  });

  it('stops reading the source when the consumer stops', async () => {
    let pulled = 0;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield Buffer.from(`${i}\n`);
      }
    }
    const reader = new LineReader(chunks());
    for await (const lines of reader.batches()) if (lines[0]!.text === '2') break;
    expect(pulled).toBe(3);
  });
});
