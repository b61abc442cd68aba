/**
 * Option lists of `--help`, laid out the same way for every command: the option and its
 * value in one column, the description wrapped beside it, the default in brackets
 * right-aligned at the end of the description's last line. The detection options' rows
 * come from the table of src/detect/options.ts, the commands' own rows from each command;
 * one layout keeps them aligned together.
 */

export interface HelpRow {
  /** `--trees N`, `-h, --help`. */
  option: string;
  /** One description; wrapped to the width. */
  text: string;
  /** Shown as `[default]`; none when the option is off unless given. */
  default?: string | undefined;
}

export interface HelpSection {
  /** Printed above the rows; none for a list without a heading. */
  title?: string;
  rows: readonly HelpRow[];
  /** Paragraphs printed under the rows (after an empty line), wrapped to the width. */
  notes?: readonly string[];
}

/** Total width of a help line. */
export const HELP_WIDTH = 88;
/** Options longer than this put their description on the next line. */
const MAX_OPTION_COLUMN = 26;
const INDENT = '  ';
/** Narrowest description when a default shares its last line. */
const MIN_TEXT_BESIDE_DEFAULT = 24;
/** Least space between a description and its default. */
const DEFAULT_GAP = 3;
/** Longer defaults take a line of their own rather than narrow the description. */
const MAX_NARROWING_DEFAULT = 16;

/** Words of `text` in lines of at most `width` characters (a longer word keeps its own line). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The option column's width for these rows: the longest option up to MAX_OPTION_COLUMN, plus a gap. */
function optionColumn(sections: readonly HelpSection[]): number {
  let longest = 0;
  for (const s of sections) for (const r of s.rows) if (r.option.length <= MAX_OPTION_COLUMN) longest = Math.max(longest, r.option.length);
  return longest + 2;
}

function formatRow(row: HelpRow, column: number, width: number): string[] {
  const textStart = INDENT.length + column;
  const textWidth = width - textStart;
  const lead = INDENT + row.option;
  const own = lead.length + 1 > textStart; // the description starts on the next line
  const pad = ' '.repeat(textStart);
  const tag = row.default !== undefined ? `[${row.default}]` : undefined;
  let text = wrapText(row.text, textWidth);
  // The default closes the description's last line, narrowing the text when a short default would not fit.
  if (tag !== undefined && tag.length <= MAX_NARROWING_DEFAULT && text.length > 0 && text[text.length - 1]!.length + DEFAULT_GAP + tag.length > textWidth) {
    text = wrapText(row.text, Math.max(MIN_TEXT_BESIDE_DEFAULT, textWidth - tag.length - DEFAULT_GAP));
  }
  const out: string[] = [];
  if (own) out.push(lead);
  text.forEach((t, i) => out.push((i === 0 && !own ? lead.padEnd(textStart) : pad) + t));
  if (out.length === 0) out.push(lead);
  if (tag !== undefined) {
    const last = out[out.length - 1]!;
    if (last.length + DEFAULT_GAP + tag.length <= width) out[out.length - 1] = last.padEnd(width - tag.length) + tag;
    else out.push(tag.padStart(width));
  }
  return out;
}

/** The sections as help text, every row aligned on one option column; each section ends with a newline. */
export function formatHelpSections(sections: readonly HelpSection[], width = HELP_WIDTH): string {
  const column = optionColumn(sections);
  const blocks = sections.map((s) => {
    const lines: string[] = [];
    if (s.title !== undefined) lines.push(s.title);
    for (const r of s.rows) lines.push(...formatRow(r, column, width));
    for (const n of s.notes ?? []) lines.push('', ...wrapText(n, width - INDENT.length).map((l) => INDENT + l));
    return lines.join('\n') + '\n';
  });
  return blocks.join('\n');
}
