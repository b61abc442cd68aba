/**
 * Helpers around PipelineObserver (src/pipeline/contracts.ts): one observer made of
 * several, an observer that can never throw into the pipeline, and the shape of the
 * records from the detection settings.
 */
import type { DetectionSettings } from '../detect/settings.js';
import type { PipelineObserver, PipelineShape } from './contracts.js';

const CALLS = ['started', 'batchScored', 'deadLettered', 'delivered', 'committed', 'stopping', 'stopped'] as const;
type Call = (typeof CALLS)[number];
type AnyCall = (event: unknown) => void;

function method(o: PipelineObserver, name: Call): AnyCall | undefined {
  const fn = o[name] as AnyCall | undefined;
  return fn === undefined ? undefined : fn.bind(o);
}

/** Calls every observer in turn. */
export function combineObservers(...observers: PipelineObserver[]): PipelineObserver {
  const out: Record<string, AnyCall> = {};
  for (const name of CALLS) {
    const fns = observers.map((o) => method(o, name)).filter((f): f is AnyCall => f !== undefined);
    if (fns.length > 0) out[name] = (e) => fns.forEach((f) => f(e));
  }
  return out as PipelineObserver;
}

/** Wraps an observer so that its first error is reported and turns it off; nothing reaches the pipeline. */
export function safeObserver(observer: PipelineObserver, report: (error: unknown) => void): PipelineObserver {
  let failed = false;
  const out: Record<string, AnyCall> = {};
  for (const name of CALLS) {
    const fn = method(observer, name);
    if (fn === undefined) continue;
    out[name] = (e) => {
      if (failed) return;
      try {
        fn(e);
      } catch (error) {
        failed = true;
        report(error);
      }
    };
  }
  return out as PipelineObserver;
}

/** The records' shape under these settings. */
export function shapeOf(settings: DetectionSettings): PipelineShape {
  return { fields: settings.mapping.fields, keyed: settings.mapping.keyField !== undefined, shingleSize: settings.forest.shingleSize ?? 1 };
}
