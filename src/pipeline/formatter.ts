/**
 * The one output formatter of every command: a scored record becomes one JSON object,
 * the input's fields followed by the results (results win over input fields of the same
 * name), or only the `outputFields` asked for.
 *
 *   input fields..., "score", "anomaly", ["grade", "threshold"], ["explanation"], ["recordId"]
 *
 * `appendLine` has a fast path that splices the results into the input's own JSON text
 * (no re-serialisation of the input); `json` always builds the object. Both may throw
 * for records JSON cannot serialise (e.g. nested thousands of levels deep): callers turn
 * that record into a dead letter (see FormatError and src/pipeline/batch-processor.ts).
 */
import type { BatchResults } from '../detect/detector-spec.js';
import { explain, type Explanation } from '../detect/explanation.js';
import type { DetectionSettings } from '../detect/settings.js';
import { isAdaptive } from '../detect/strategy.js';
import type { ByteTextBuilder } from '../io/output.js';
import { RcfStreamError } from '../util/errors.js';

export interface FormatterOptions {
  /** Add "recordId" (the service: a stable id for de-duplication downstream). */
  recordIds?: boolean;
}

/** Output of one record could not be produced; the record becomes a dead letter. */
export class FormatError extends RcfStreamError {
  override readonly name = 'FormatError';
  readonly code = 'OUTPUT_FORMAT';
  constructor(
    message: string,
    /** The dead-letter kind. */
    readonly kind: string,
  ) {
    super(message);
  }
}

/** Runs `fn`, turning a serialisation failure (deep nesting, BigInt, ...) into a FormatError. */
export function guardFormat<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof FormatError) throw error;
    const reason = error instanceof RangeError ? 'too deeply nested to serialise' : (error as Error).message;
    throw new FormatError(`${what}: ${reason}`, 'unserialisable');
  }
}

export class RecordFormatter {
  readonly adaptive: boolean;
  readonly #explain: boolean;
  readonly #fields: readonly string[];
  readonly #shingleSize: number;
  readonly #attributionLength: number;
  readonly #outputFields: readonly string[] | undefined;
  readonly #recordIds: boolean;
  /** Names the results add; an input field of the same name forces the slow path (results win). */
  readonly #added: readonly string[];

  constructor(settings: Pick<DetectionSettings, 'threshold' | 'explain' | 'mapping' | 'forest' | 'outputFields'>, options: FormatterOptions = {}) {
    this.adaptive = isAdaptive(settings.threshold);
    this.#explain = settings.explain;
    this.#fields = settings.mapping.fields;
    this.#shingleSize = settings.forest.shingleSize ?? 1;
    this.#attributionLength = this.#explain ? this.#fields.length * this.#shingleSize : 0;
    this.#outputFields = settings.outputFields;
    this.#recordIds = options.recordIds === true;
    this.#added = [
      'score',
      'anomaly',
      ...(this.adaptive ? ['grade', 'threshold'] : []),
      ...(this.#explain ? ['explanation'] : []),
      ...(this.#recordIds ? ['recordId'] : []),
    ];
  }

  /** Appends one NDJSON line (newline included) for record i; `text` is the input's JSON text when known. */
  appendLine(out: ByteTextBuilder, text: string | undefined, source: Record<string, unknown>, r: BatchResults, i: number, recordId?: string): void {
    let spliceable = text !== undefined && this.#outputFields === undefined;
    if (spliceable) for (const name of this.#added) if (Object.hasOwn(source, name)) spliceable = false;
    if (!spliceable) {
      // Serialise before appending, so a failure leaves `out` as it was.
      const line = this.json(source, r, i, recordId);
      out.append(line);
      out.append('\n');
      return;
    }
    // The text parsed as a JSON object, so its last '}' closes it.
    out.appendUntil(text!, text!.lastIndexOf('}'));
    out.append(',"score":');
    out.append(String(r.score[i]));
    out.append(r.anomaly[i] === 1 ? ',"anomaly":true' : ',"anomaly":false');
    if (this.adaptive) {
      out.append(',"grade":');
      out.append(String(r.grade[i]));
      out.append(',"threshold":');
      out.append(String(r.threshold[i]));
    }
    if (this.#explain) {
      out.append(',"explanation":');
      out.append(JSON.stringify(this.explanation(r, i)));
    }
    if (this.#recordIds) {
      out.append(',"recordId":');
      out.append(JSON.stringify(recordId ?? ''));
    }
    out.append('}\n');
  }

  /** The output record's JSON text (no newline). Throws FormatError when it cannot be serialised. */
  json(source: Record<string, unknown>, r: BatchResults, i: number, recordId?: string): string {
    return guardFormat('output record', () => JSON.stringify(this.object(source, r, i, recordId)));
  }

  /** The output record as an object. */
  object(source: Record<string, unknown>, r: BatchResults, i: number, recordId?: string): Record<string, unknown> {
    const results = this.#results(r, i, recordId);
    if (this.#outputFields === undefined) return Object.assign({ ...source }, results);
    const out = Object.create(null) as Record<string, unknown>;
    for (const name of this.#outputFields) {
      const value = Object.hasOwn(results, name) ? results[name] : Object.hasOwn(source, name) ? source[name] : undefined;
      // Absent fields are left out rather than invented.
      if (value !== undefined) out[name] = value;
    }
    return out;
  }

  explanation(r: BatchResults, i: number): Explanation {
    return explain(this.#fields, this.#shingleSize, r.high!, r.low!, i * this.#attributionLength);
  }

  #results(r: BatchResults, i: number, recordId: string | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = { score: r.score[i], anomaly: r.anomaly[i] === 1 };
    if (this.adaptive) {
      out['grade'] = r.grade[i];
      out['threshold'] = r.threshold[i];
    }
    if (this.#explain && r.high !== undefined) out['explanation'] = this.explanation(r, i);
    if (this.#recordIds) out['recordId'] = recordId;
    return out;
  }
}
