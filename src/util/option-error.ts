/**
 * A bad option value, with the option as a structured field: `option` is its library /
 * JSON name (`numberOfTrees`, `timeField`); each interface prints it in its own spelling
 * (`--trees`, `RCF_TREES`, `numberOfTrees`) followed by `detail`.
 */
export class OptionError extends RangeError {
  override readonly name = 'OptionError';
  /** Same field as RcfStreamError's (see util/errors.ts isRcfStreamError); stays a RangeError for the forest API. */
  readonly code = 'BAD_OPTION';
  constructor(
    readonly option: string,
    readonly detail: string,
  ) {
    super(`${option}: ${detail}`);
  }
}

/** `<spelled> must ...`, or `<spelled>: <what is wrong>`. */
export function describeOptionError(spelled: string, detail: string): string {
  return /^(must|needs|cannot|applies|adds)\b/.test(detail) ? `${spelled} ${detail}` : `${spelled}: ${detail}`;
}
