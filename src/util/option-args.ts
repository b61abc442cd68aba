/**
 * Option parsing shared by every interface that takes flags or RCF_* settings (the
 * subcommands, the Lambda handler through run's loader): `node:util` parseArgs plus
 * strict number readers, all failing with a UsageError whose message names the option.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { RcfStreamError } from './errors.js';

/** Unusable options: reported as one line, exit code 2. */
export class UsageError extends RcfStreamError {
  override name = 'UsageError';
  readonly code = 'USAGE';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parseCommandArgs(argv: string[], options: Options, maxPositionals: number): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs explains well but over several lines; keep one line.
    const full = (error as Error).message;
    const first = full.split(/\n|\. /)[0]!.replace(/\.$/, '');
    const dash = /use '(--[^=']+)=-XYZ'/.exec(full);
    throw new UsageError(dash ? `${first}: write ${dash[1]}=-VALUE for a value starting with '-'` : first);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}`);
  }
  return { values: parsed.values as Parsed['values'], positionals: parsed.positionals };
}

export function stringOption(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function integerOption(values: Parsed['values'], name: string, min: number, max: number): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const trimmed = text.trim().replace(/_/g, '');
  const value = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(text)}`);
  if (value < min || value > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function numberOption(values: Parsed['values'], name: string, min: number, max = Infinity): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  const value = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isFinite(value)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(text)}`);
  if (value < min || value > max) {
    throw new UsageError(`--${name} must be ${max === Infinity ? `>= ${min}` : `between ${min} and ${max}`}, got ${value}`);
  }
  return value;
}

export function choiceOption<T extends string>(values: Parsed['values'], name: string, choices: readonly T[]): T | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${name} must be ${choices.map((c) => JSON.stringify(c)).join(' or ')}, got ${JSON.stringify(text)}`);
  }
  return text as T;
}

/** A comma-separated list of names (`--fields a,b,c`). */
export function listOption(values: Parsed['values'], name: string): string[] | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => s.length === 0)) throw new UsageError(`--${name} must be a comma-separated list of names, got ${JSON.stringify(text)}`);
  return items;
}
