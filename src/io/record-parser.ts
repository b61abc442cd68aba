/**
 * Turns one input line (NDJSON or CSV) into the numeric point the detector
 * scores, plus what the output needs: the time, an optional key, and the
 * input fields for echoing.
 *
 * Values are written into a caller-owned Float64Array so a batch of points
 * needs no per-record array. A record that cannot be used yields a failure
 * with a reason meant for people (dead-letter file, logs) and a short `kind`
 * meant for counting.
 *
 * Accepted numbers:
 * - JSON numbers, and strings holding a plain decimal number (`"30.5"`,
 *   `"-1e3"`, surrounding whitespace allowed), because producers such as
 *   Kinesis agents often send every field as a string. Hex, `"Infinity"`,
 *   `"NaN"` and empty strings are rejected.
 * - Only finite values with |v| <= 1e38: larger ones would overflow the
 *   float32 bounding-box arithmetic downstream.
 *
 * Field names are top-level keys; a dot in a name is literal, not a path.
 */
import { OptionError } from '../util/option-error.js';

export const MAX_FIELDS = 30;
/** Largest accepted magnitude; float32 tops out near 3.4e38 and box sums must not overflow. */
export const MAX_ABS_VALUE = 1e38;

export interface FieldMapping {
  /** Names of the 1..30 numeric fields forming the point, in order. */
  fields: string[];
  /** Field holding the record's time; required in every record when set. Passed through unparsed. */
  timeField?: string;
  /** Field holding the record's key (e.g. a sensor id); required in every record when set. */
  keyField?: string;
}

/** Stable category of a parse failure, for counting; the reason carries the details. */
export type ParseFailureKind =
  | 'malformed JSON'
  | 'not a JSON object'
  | 'missing field'
  | 'not a number'
  | 'not finite'
  | 'out of range'
  | 'invalid key'
  | 'CSV column count'
  | 'CSV quoting';

export interface ParsedRecord {
  ok: true;
  /** Value of `timeField`, as found (CSV: number if numeric, else the string); undefined without a timeField. */
  time: unknown;
  /** Value of `keyField` as a string; undefined without a keyField. */
  key?: string;
  /** All input fields: the parsed JSON object, or CSV columns with numeric cells as numbers. */
  source: Record<string, unknown>;
}

export interface ParseFailure {
  ok: false;
  reason: string;
  kind: ParseFailureKind;
}

export type ParseResult = ParsedRecord | ParseFailure;

export interface RecordParser {
  /** Number of values written per record (= mapping.fields.length). */
  readonly dimensions: number;
  /**
   * Parses `text`; on success writes the values to `out[offset .. offset + dimensions)`.
   * On failure those slots hold unspecified values.
   */
  parse(text: string, out: Float64Array, offset?: number): ParseResult;
}

export type InputFormat = 'ndjson' | 'csv';

/**
 * Checks a mapping before any input is read.
 * @throws OptionError (a RangeError) naming the offending option (`fields`, `timeField`, `keyField`).
 */
export function validateFieldMapping(mapping: FieldMapping): void {
  const fields: unknown = mapping.fields;
  if (!Array.isArray(fields)) {
    throw new OptionError('fields', 'must be an array of field names');
  }
  if (fields.length < 1 || fields.length > MAX_FIELDS) {
    throw new OptionError('fields', `must name 1 to ${MAX_FIELDS} fields, got ${fields.length}`);
  }
  const seen = new Set<string>();
  for (let i = 0; i < fields.length; i++) {
    const name: unknown = fields[i];
    if (typeof name !== 'string' || name.length === 0) {
      throw new OptionError('fields', `field ${i + 1} must be a non-empty name`);
    }
    if (seen.has(name)) {
      throw new OptionError('fields', `field ${JSON.stringify(name)} is listed twice`);
    }
    seen.add(name);
  }
  for (const option of ['timeField', 'keyField'] as const) {
    const name: unknown = mapping[option];
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
      throw new OptionError(option, 'must be a non-empty name');
    }
  }
}

const DECIMAL_NUMBER = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/**
 * Reads a plain decimal number (optionally signed, fractional, with exponent,
 * surrounding whitespace allowed). Returns NaN for anything else, including
 * hex, "Infinity" and the empty string, which `Number()` would accept.
 * Overflowing literals such as "1e999" give Infinity.
 */
export function parseDecimal(text: string): number {
  return DECIMAL_NUMBER.test(text) ? Number(text) : NaN;
}

const SHOWN_VALUE_CHARS = 40;

/** A short JSON rendering of an offending value for a reason message. */
function show(value: unknown): string {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return shown.length > SHOWN_VALUE_CHARS ? `${shown.slice(0, SHOWN_VALUE_CHARS)}…` : shown;
}

function failure(kind: ParseFailureKind, reason: string): ParseFailure {
  return { ok: false, reason, kind };
}

/** Shared checks of a mapped value once it is known to be a number. */
function checkNumber(quotedName: string, value: number): ParseFailure | undefined {
  if (!Number.isFinite(value)) return failure('not finite', `field ${quotedName} is not finite`);
  if (value > MAX_ABS_VALUE || value < -MAX_ABS_VALUE) {
    return failure('out of range', `field ${quotedName} exceeds float32 range (|v| > 1e38)`);
  }
  return undefined;
}

/** Why a string is not an acceptable value. */
function stringValueFailure(quotedName: string, text: string): ParseFailure {
  if (text.trim().length === 0) return failure('not a number', `field ${quotedName} is empty`);
  const value = parseDecimal(text);
  if (Number.isNaN(value)) return failure('not a number', `field ${quotedName} is not a number: ${show(text)}`);
  return checkNumber(quotedName, value) ?? failure('not a number', `field ${quotedName} is not a number: ${show(text)}`);
}

function checkOutput(out: Float64Array, offset: number, dimensions: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + dimensions > out.length) {
    throw new RangeError(
      `output slots ${offset}..${offset + dimensions - 1} do not fit a Float64Array of length ${out.length}`,
    );
  }
}

class MappedNames {
  readonly fields: readonly string[];
  /** JSON-quoted names, prepared once for reason messages. */
  readonly quotedFields: readonly string[];
  readonly timeField: string | undefined;
  readonly keyField: string | undefined;
  readonly quotedTime: string;
  readonly quotedKey: string;

  constructor(mapping: FieldMapping) {
    validateFieldMapping(mapping);
    this.fields = Object.freeze([...mapping.fields]);
    this.quotedFields = Object.freeze(this.fields.map((name) => JSON.stringify(name)));
    this.timeField = mapping.timeField;
    this.keyField = mapping.keyField;
    this.quotedTime = JSON.stringify(mapping.timeField ?? '');
    this.quotedKey = JSON.stringify(mapping.keyField ?? '');
  }
}

/** Parses NDJSON lines: one JSON object per line. */
export class NdjsonRecordParser implements RecordParser {
  readonly dimensions: number;
  readonly #names: MappedNames;

  constructor(mapping: FieldMapping) {
    this.#names = new MappedNames(mapping);
    this.dimensions = this.#names.fields.length;
  }

  parse(text: string, out: Float64Array, offset = 0): ParseResult {
    const names = this.#names;
    const dimensions = this.dimensions;
    checkOutput(out, offset, dimensions);

    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return failure('malformed JSON', `malformed JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      const got = parsed === null ? 'null' : Array.isArray(parsed) ? 'array' : typeof parsed;
      return failure('not a JSON object', `not a JSON object (got ${got})`);
    }
    const source = parsed as Record<string, unknown>;

    const fields = names.fields;
    for (let i = 0; i < dimensions; i++) {
      const name = fields[i];
      const raw = source[name];
      let value: number;
      if (typeof raw === 'number') {
        value = raw;
      } else if (typeof raw === 'string') {
        value = parseDecimal(raw);
        if (Number.isNaN(value)) return stringValueFailure(names.quotedFields[i], raw);
      } else if (raw === undefined || !Object.hasOwn(source, name)) {
        // hasOwn: names like "toString" resolve to inherited members when absent.
        return failure('missing field', `missing field ${names.quotedFields[i]}`);
      } else {
        return failure('not a number', `field ${names.quotedFields[i]} is not a number: ${show(raw)}`);
      }
      const bad = checkNumber(names.quotedFields[i], value);
      if (bad !== undefined) return bad;
      out[offset + i] = value;
    }

    let time: unknown;
    if (names.timeField !== undefined) {
      if (!Object.hasOwn(source, names.timeField)) {
        return failure('missing field', `missing field ${names.quotedTime}`);
      }
      time = source[names.timeField];
    }

    let key: string | undefined;
    if (names.keyField !== undefined) {
      const raw = source[names.keyField];
      if (typeof raw === 'string') {
        key = raw;
      } else if (typeof raw === 'number' && Number.isFinite(raw)) {
        key = String(raw);
      } else if (!Object.hasOwn(source, names.keyField)) {
        return failure('missing field', `missing field ${names.quotedKey}`);
      } else {
        return failure('invalid key', `field ${names.quotedKey} is not a string or number: ${show(raw)}`);
      }
    }

    return { ok: true, time, key, source };
  }
}

const QUOTE = 34;
const COMMA = 44;

/**
 * Splits one CSV row per RFC 4180, within a single line: fields separated by
 * commas, optionally double-quoted, `""` inside quotes standing for one quote.
 * A quote inside an unquoted field is kept literally. Quoted fields spanning
 * lines are not supported (the input is read line by line).
 * Returns the cells, or a string describing the quoting error.
 */
export function splitCsvRow(line: string): string[] | string {
  if (line.indexOf('"') === -1) return line.split(',');
  const cells: string[] = [];
  const end = line.length;
  let i = 0;
  for (;;) {
    if (line.charCodeAt(i) === QUOTE) {
      let cell = '';
      let from = i + 1;
      for (;;) {
        const quote = line.indexOf('"', from);
        if (quote === -1) return `CSV column ${cells.length + 1} has an unterminated quoted field`;
        if (line.charCodeAt(quote + 1) === QUOTE) {
          cell += line.slice(from, quote + 1);
          from = quote + 2;
          continue;
        }
        cell += line.slice(from, quote);
        i = quote + 1;
        break;
      }
      cells.push(cell);
      if (i === end) return cells;
      if (line.charCodeAt(i) !== COMMA) {
        return `CSV column ${cells.length} has text after its closing quote`;
      }
      i++;
    } else {
      const comma = line.indexOf(',', i);
      if (comma === -1) {
        cells.push(line.slice(i));
        return cells;
      }
      cells.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
}

/**
 * Parses CSV rows against a header row naming the columns. Header names are
 * trimmed (so `time, value` works); cells are not, apart from the whitespace
 * numbers tolerate.
 */
export class CsvRecordParser implements RecordParser {
  readonly dimensions: number;
  /** Column names from the header, in order. */
  readonly columns: readonly string[];
  readonly #names: MappedNames;
  readonly #fieldColumns: Int32Array;
  readonly #timeColumn: number;
  readonly #keyColumn: number;
  /** A column named "__proto__" must be defined, not assigned, or it would replace the prototype. */
  readonly #protoColumn: number;

  /** @throws Error when the header is malformed or lacks a mapped column, or names one twice. */
  constructor(mapping: FieldMapping, headerLine: string) {
    this.#names = new MappedNames(mapping);
    this.dimensions = this.#names.fields.length;

    const header = splitCsvRow(headerLine);
    if (typeof header === 'string') throw new Error(`CSV header: ${header}`);
    this.columns = Object.freeze(header.map((name) => name.trim()));

    const columnOf = (name: string, option: string): number => {
      const index = this.columns.indexOf(name);
      if (index === -1) {
        const known = this.columns.map((column) => JSON.stringify(column)).join(', ');
        throw new OptionError(option, `CSV header has no column ${JSON.stringify(name)} (columns: ${known})`);
      }
      if (this.columns.indexOf(name, index + 1) !== -1) {
        throw new OptionError(option, `CSV header has more than one column ${JSON.stringify(name)}`);
      }
      return index;
    };
    this.#fieldColumns = Int32Array.from(this.#names.fields, (name) => columnOf(name, 'fields'));
    this.#timeColumn = this.#names.timeField === undefined ? -1 : columnOf(this.#names.timeField, 'timeField');
    this.#keyColumn = this.#names.keyField === undefined ? -1 : columnOf(this.#names.keyField, 'keyField');
    this.#protoColumn = this.columns.indexOf('__proto__');
  }

  parse(text: string, out: Float64Array, offset = 0): ParseResult {
    const dimensions = this.dimensions;
    checkOutput(out, offset, dimensions);

    const cells = splitCsvRow(text);
    if (typeof cells === 'string') return failure('CSV quoting', cells);
    const columns = this.columns;
    if (cells.length !== columns.length) {
      return failure('CSV column count', `CSV row has ${cells.length} columns, header has ${columns.length}`);
    }

    const source: Record<string, unknown> = {};
    for (let j = 0; j < cells.length; j++) {
      const cell = cells[j];
      const value = parseDecimal(cell);
      const converted = Number.isFinite(value) ? value : cell;
      if (j === this.#protoColumn) {
        Object.defineProperty(source, '__proto__', { value: converted, enumerable: true, writable: true, configurable: true });
      } else {
        source[columns[j]] = converted;
      }
    }

    const fieldColumns = this.#fieldColumns;
    const quoted = this.#names.quotedFields;
    for (let i = 0; i < dimensions; i++) {
      const column = fieldColumns[i];
      const value = source[columns[column]];
      if (typeof value !== 'number') return stringValueFailure(quoted[i], cells[column]);
      const bad = checkNumber(quoted[i], value);
      if (bad !== undefined) return bad;
      out[offset + i] = value;
    }

    const time = this.#timeColumn === -1 ? undefined : source[columns[this.#timeColumn]];
    const key = this.#keyColumn === -1 ? undefined : cells[this.#keyColumn];
    return { ok: true, time, key, source };
  }
}

/** Builds the parser for an input format; CSV needs the header line. */
export function createRecordParser(format: InputFormat, mapping: FieldMapping, headerLine?: string): RecordParser {
  if (format === 'ndjson') return new NdjsonRecordParser(mapping);
  if (headerLine === undefined) throw new Error('CSV input needs a header line');
  return new CsvRecordParser(mapping, headerLine);
}
