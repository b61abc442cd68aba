/**
 * The one error base of the package. Every error rcf-stream throws on purpose carries a
 * `code`: UPPER_SNAKE, stable across releases and part of the public API (test it, not the
 * message, which may be reworded). `name` is the subclass name, as before; messages are
 * written for people and say what to do, so interfaces print them without the class name.
 *
 * Codes: BAD_OPTION, BINARY_FORMAT, CHECKPOINT_CONFLICT, CHECKPOINT_CORRUPT,
 * CHECKPOINT_LOCKED, CHECKPOINT_STREAM_MISMATCH, KERNEL_ABORT, KINESIS_SINK_FAILED,
 * KINESIS_SOURCE_FAILED, KPL_FORMAT, LAMBDA_CONFIG, MODEL_MISMATCH, MODEL_SCOPE,
 * MODEL_STATE_INVALID, MODELS_CORRUPT, OUTPUT_FORMAT, SERVICE_FAILED, SINK_FAILED,
 * SNAPSHOT_INVALID, STATE_CONFLICT, UNUSABLE_FILE, USAGE.
 */
import { OptionError } from './option-error.js';

export abstract class RcfStreamError extends Error {
  /** Stable machine-readable identity of the failure (UPPER_SNAKE). */
  abstract readonly code: string;

  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    // Subclasses also set `name` literally, so it survives bundlers that rename classes.
    this.name = new.target.name;
  }
}

/** A project error. OptionError is accepted too: it must stay a RangeError, as the forest API documents. */
export function isRcfStreamError(error: unknown): error is RcfStreamError | OptionError {
  return error instanceof RcfStreamError || error instanceof OptionError;
}
