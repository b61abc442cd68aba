import { describe, expect, it } from 'vitest';
import {
  CsvRecordParser,
  createRecordParser,
  NdjsonRecordParser,
  parseDecimal,
  type ParseResult,
  splitCsvRow,
  validateFieldMapping,
} from '../../src/io/record-parser.js';

const value = { fields: ['value'], timeField: 'time' };

function failureOf(result: ParseResult): { reason: string; kind: string } {
  if (result.ok) throw new Error('expected a failure');
  return { reason: result.reason, kind: result.kind };
}

describe('validateFieldMapping', () => {
  it('accepts 1 to 30 distinct names', () => {
    expect(() => validateFieldMapping({ fields: ['value'] })).not.toThrow();
    const thirty = Array.from({ length: 30 }, (_, i) => `f${i}`);
    expect(() => validateFieldMapping({ fields: thirty, timeField: 't', keyField: 'k' })).not.toThrow();
  });

  it.each([
    [{ fields: [] }, /^fields: must name 1 to 30 fields, got 0$/],
    [{ fields: Array.from({ length: 31 }, (_, i) => `f${i}`) }, /^fields: .*got 31$/],
    [{ fields: ['a', ''] }, /^fields: field 2 must be a non-empty name$/],
    [{ fields: ['a', 'b', 'a'] }, /^fields: field "a" is listed twice$/],
    [{ fields: ['a'], timeField: '' }, /^timeField: /],
    [{ fields: ['a'], keyField: '' }, /^keyField: /],
    [{ fields: 'value' as unknown as string[] }, /^fields: must be an array/],
  ])('rejects %j', (mapping, message) => {
    expect(() => validateFieldMapping(mapping)).toThrow(RangeError);
    expect(() => validateFieldMapping(mapping)).toThrow(message);
  });

  it('runs when a parser is built', () => {
    expect(() => new NdjsonRecordParser({ fields: [] })).toThrow(RangeError);
  });
});

describe('parseDecimal', () => {
  it.each([
    ['30.5', 30.5],
    ['-2', -2],
    ['+1e3', 1000],
    ['.5', 0.5],
    ['5.', 5],
    [' 7 ', 7],
    ['1E-2', 0.01],
  ])('reads %j', (text, expected) => {
    expect(parseDecimal(text)).toBe(expected);
  });

  it.each(['', ' ', 'abc', '0x1A', '0b1', 'Infinity', '-Infinity', 'NaN', '1,5', '1e', '--1', '1 2'])(
    'rejects %j',
    (text) => {
      expect(parseDecimal(text)).toBeNaN();
    },
  );

  it('gives Infinity for overflowing literals', () => {
    expect(parseDecimal('1e999')).toBe(Infinity);
  });
});

describe('NdjsonRecordParser', () => {
  it('writes the values at the offset and returns time, key and source', () => {
    const parser = new NdjsonRecordParser({ fields: ['a', 'b'], timeField: 'time', keyField: 'sensor' });
    const out = new Float64Array(6).fill(-1);
    const result = parser.parse('{"time":"2024-01-01T00:00:00Z","a":1.5,"b":-2,"sensor":"s1","note":"x"}', out, 2);
    expect(result).toEqual({
      ok: true,
      time: '2024-01-01T00:00:00Z',
      key: 's1',
      source: { time: '2024-01-01T00:00:00Z', a: 1.5, b: -2, sensor: 's1', note: 'x' },
    });
    expect(Array.from(out)).toEqual([-1, -1, 1.5, -2, -1, -1]);
    expect(parser.dimensions).toBe(2);
  });

  it('parses the reference record with offset defaulting to 0', () => {
    const out = new Float64Array(1);
    const result = new NdjsonRecordParser(value).parse('{"time": 0, "value": 30.12}', out);
    expect(result).toEqual({ ok: true, time: 0, key: undefined, source: { time: 0, value: 30.12 } });
    expect(out[0]).toBe(30.12);
  });

  it('keeps extra and nested fields in source untouched', () => {
    const result = new NdjsonRecordParser({ fields: ['value'] }).parse(
      '{"value":1,"meta":{"site":"A","tags":[1,2]},"flag":true,"none":null}',
      new Float64Array(1),
    );
    expect(result.ok && result.source).toEqual({ value: 1, meta: { site: 'A', tags: [1, 2] }, flag: true, none: null });
    expect(result.ok && result.time).toBeUndefined();
  });

  it('accepts numeric strings', () => {
    const out = new Float64Array(3);
    const parser = new NdjsonRecordParser({ fields: ['a', 'b', 'c'] });
    const result = parser.parse('{"a":"30.5","b":" -1e2 ","c":"7"}', out);
    expect(result.ok).toBe(true);
    expect(Array.from(out)).toEqual([30.5, -100, 7]);
    // The source keeps what was sent.
    expect(result.ok && result.source['a']).toBe('30.5');
  });

  it('accepts the float32-safe bound itself', () => {
    const out = new Float64Array(2);
    expect(new NdjsonRecordParser({ fields: ['a', 'b'] }).parse('{"a":1e38,"b":-1e38}', out).ok).toBe(true);
  });

  it('accepts numeric keys as strings', () => {
    const parser = new NdjsonRecordParser({ fields: ['v'], keyField: 'id' });
    expect(parser.parse('{"v":1,"id":42}', new Float64Array(1))).toMatchObject({ ok: true, key: '42' });
  });

  it.each([
    ['{"time":0,"value":', 'malformed JSON', /^malformed JSON: .+/],
    ['', 'malformed JSON', /^malformed JSON: .+/],
    ['[1,2]', 'not a JSON object', /^not a JSON object \(got array\)$/],
    ['30.12', 'not a JSON object', /^not a JSON object \(got number\)$/],
    ['null', 'not a JSON object', /^not a JSON object \(got null\)$/],
    ['"text"', 'not a JSON object', /^not a JSON object \(got string\)$/],
    ['{"time":0}', 'missing field', /^missing field "value"$/],
    ['{"value":1}', 'missing field', /^missing field "time"$/],
    ['{"time":0,"value":"abc"}', 'not a number', /^field "value" is not a number: "abc"$/],
    ['{"time":0,"value":"0x10"}', 'not a number', /^field "value" is not a number: "0x10"$/],
    ['{"time":0,"value":""}', 'not a number', /^field "value" is empty$/],
    ['{"time":0,"value":null}', 'not a number', /^field "value" is not a number: null$/],
    ['{"time":0,"value":true}', 'not a number', /^field "value" is not a number: true$/],
    ['{"time":0,"value":[1]}', 'not a number', /^field "value" is not a number: \[1\]$/],
    ['{"time":0,"value":1e999}', 'not finite', /^field "value" is not finite$/],
    ['{"time":0,"value":"-1e999"}', 'not finite', /^field "value" is not finite$/],
    ['{"time":0,"value":1.5e38}', 'out of range', /^field "value" exceeds float32 range \(\|v\| > 1e38\)$/],
    ['{"time":0,"value":"-2e38"}', 'out of range', /^field "value" exceeds float32 range/],
  ])('rejects %j', (text, kind, reason) => {
    const failure = failureOf(new NdjsonRecordParser(value).parse(text, new Float64Array(1)));
    expect(failure.kind).toBe(kind);
    expect(failure.reason).toMatch(reason);
  });

  it('names the first bad field of several', () => {
    const parser = new NdjsonRecordParser({ fields: ['a', 'b', 'c'] });
    expect(failureOf(parser.parse('{"a":1,"b":"x","c":null}', new Float64Array(3))).reason).toBe(
      'field "b" is not a number: "x"',
    );
  });

  it('shortens long offending values', () => {
    const reason = failureOf(new NdjsonRecordParser(value).parse(`{"time":0,"value":"${'z'.repeat(500)}"}`, new Float64Array(1))).reason;
    expect(reason.length).toBeLessThan(80);
    expect(reason).toMatch(/…$/);
  });

  it('does not mistake inherited members for fields', () => {
    const parser = new NdjsonRecordParser({ fields: ['toString'], keyField: 'constructor' });
    expect(failureOf(parser.parse('{}', new Float64Array(1))).reason).toBe('missing field "toString"');
    expect(failureOf(parser.parse('{"toString":1}', new Float64Array(1))).reason).toBe('missing field "constructor"');
  });

  it('reads a field named __proto__', () => {
    const out = new Float64Array(1);
    expect(new NdjsonRecordParser({ fields: ['__proto__'] }).parse('{"__proto__":3}', out).ok).toBe(true);
    expect(out[0]).toBe(3);
  });

  it('rejects keys that are neither strings nor numbers', () => {
    const parser = new NdjsonRecordParser({ fields: ['v'], keyField: 'id' });
    expect(failureOf(parser.parse('{"v":1,"id":{"a":1}}', new Float64Array(1)))).toEqual({
      kind: 'invalid key',
      reason: 'field "id" is not a string or number: {"a":1}',
    });
    expect(failureOf(parser.parse('{"v":1}', new Float64Array(1))).reason).toBe('missing field "id"');
  });

  it('throws when the output slots do not fit', () => {
    const parser = new NdjsonRecordParser({ fields: ['a', 'b'] });
    expect(() => parser.parse('{"a":1,"b":2}', new Float64Array(3), 2)).toThrow(RangeError);
  });
});

describe('splitCsvRow', () => {
  it.each([
    ['a,b,c', ['a', 'b', 'c']],
    ['', ['']],
    ['a,,', ['a', '', '']],
    ['"a,b",c', ['a,b', 'c']],
    ['"say ""hi""",2', ['say "hi"', '2']],
    ['1,"x"', ['1', 'x']],
    ['"",""', ['', '']],
    ['a"b,c', ['a"b', 'c']],
    ['"a",', ['a', '']],
  ])('splits %j', (line, cells) => {
    expect(splitCsvRow(line)).toEqual(cells);
  });

  it('reports quoting errors', () => {
    expect(splitCsvRow('1,"abc')).toBe('CSV column 2 has an unterminated quoted field');
    expect(splitCsvRow('"abc"x,1')).toBe('CSV column 1 has text after its closing quote');
  });
});

describe('CsvRecordParser', () => {
  it('maps columns by header name and converts numeric cells in source', () => {
    const parser = new CsvRecordParser({ fields: ['value', 'humidity'], timeField: 'time', keyField: 'sensor' }, 'time, sensor ,value,humidity,note');
    expect(parser.columns).toEqual(['time', 'sensor', 'value', 'humidity', 'note']);
    const out = new Float64Array(4);
    const result = parser.parse('2024-01-01,007,30.12,"45",hello', out, 1);
    expect(result).toEqual({
      ok: true,
      time: '2024-01-01',
      key: '007',
      source: { time: '2024-01-01', sensor: 7, value: 30.12, humidity: 45, note: 'hello' },
    });
    expect(Array.from(out)).toEqual([0, 30.12, 45, 0]);
  });

  it('handles quoted cells with commas and doubled quotes', () => {
    const parser = new CsvRecordParser({ fields: ['value'], timeField: 'time' }, 'time,label,value');
    const result = parser.parse('3,"hot, ""very"" hot"," 31.5 "', new Float64Array(1));
    expect(result).toMatchObject({ ok: true, time: 3, source: { time: 3, label: 'hot, "very" hot', value: 31.5 } });
  });

  it('keeps numeric-looking but unacceptable cells as strings in source', () => {
    const parser = new CsvRecordParser({ fields: ['v'] }, 'v,a,b,c');
    const result = parser.parse('1,1e999,0x10,', new Float64Array(1));
    expect(result.ok && result.source).toEqual({ v: 1, a: '1e999', b: '0x10', c: '' });
  });

  it.each([
    ['1,2,3', 'CSV column count', /^CSV row has 3 columns, header has 2$/],
    ['1', 'CSV column count', /^CSV row has 1 columns, header has 2$/],
    ['1,"2', 'CSV quoting', /^CSV column 2 has an unterminated quoted field$/],
    ['1,abc', 'not a number', /^field "value" is not a number: "abc"$/],
    ['1,', 'not a number', /^field "value" is empty$/],
    ['1,1e999', 'not finite', /^field "value" is not finite$/],
    ['1,Infinity', 'not a number', /^field "value" is not a number: "Infinity"$/],
    ['1,2e38', 'out of range', /^field "value" exceeds float32 range \(\|v\| > 1e38\)$/],
  ])('rejects %j', (row, kind, reason) => {
    const parser = new CsvRecordParser(value, 'time,value');
    const failure = failureOf(parser.parse(row, new Float64Array(1)));
    expect(failure.kind).toBe(kind);
    expect(failure.reason).toMatch(reason);
  });

  it('refuses a header that lacks or repeats a mapped column', () => {
    expect(() => new CsvRecordParser(value, 'time,val')).toThrow(
      'fields: CSV header has no column "value" (columns: "time", "val")',
    );
    expect(() => new CsvRecordParser({ fields: ['v'], keyField: 'id' }, 'v')).toThrow(/^keyField: /);
    expect(() => new CsvRecordParser(value, 'time,value,value')).toThrow(/more than one column "value"/);
    expect(() => new CsvRecordParser(value, 'time,"value')).toThrow(/^CSV header: /);
  });

  it('allows repeated columns that are not mapped', () => {
    const parser = new CsvRecordParser({ fields: ['v'] }, 'v,x,x');
    expect(parser.parse('1,2,3', new Float64Array(1))).toMatchObject({ ok: true, source: { v: 1, x: 3 } });
  });

  it('stores a column named __proto__ as data', () => {
    const parser = new CsvRecordParser({ fields: ['__proto__'] }, '__proto__,b');
    const out = new Float64Array(1);
    const result = parser.parse('5,x', out);
    expect(out[0]).toBe(5);
    expect(result.ok && Object.getPrototypeOf(result.source)).toBe(Object.prototype);
    expect(result.ok && Object.keys(result.source)).toEqual(['__proto__', 'b']);
  });
});

describe('createRecordParser', () => {
  it('builds the parser for a format', () => {
    expect(createRecordParser('ndjson', value)).toBeInstanceOf(NdjsonRecordParser);
    expect(createRecordParser('csv', value, 'time,value')).toBeInstanceOf(CsvRecordParser);
    expect(() => createRecordParser('csv', value)).toThrow(/header/);
  });
});
