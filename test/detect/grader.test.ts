import { describe, expect, it } from 'vitest';
import { FixedThresholdGrader } from '../../src/detect/grader.js';
import { AUTO_THRESHOLD, describeStrategy, graderFactory, parseThresholdStrategy } from '../../src/detect/strategy.js';
import { TrcfThresholder } from '../../src/detect/thresholder.js';
import { QualityGrader } from '../../src/detect/quality-grader.js';
import { resolveOptions } from '../../src/forest/options.js';

describe('FixedThresholdGrader', () => {
  const grader = new FixedThresholdGrader(3);

  it('flags a ready score at or above the threshold, with grade 1', () => {
    expect({ ...grader.grade(3, [1], true) }).toEqual({ anomaly: true, grade: 1, threshold: 3 });
    expect({ ...grader.grade(7.5, [1], true) }).toEqual({ anomaly: true, grade: 1, threshold: 3 });
  });

  it('does not flag scores below the threshold', () => {
    expect({ ...grader.grade(2.999, [1], true) }).toEqual({ anomaly: false, grade: 0, threshold: 3 });
  });

  it('never flags before the forest is ready', () => {
    expect(grader.grade(10, [1], false).anomaly).toBe(false);
  });

  it('rejects a threshold that is not a finite number', () => {
    expect(() => new FixedThresholdGrader(Number.NaN)).toThrow(RangeError);
  });

  it('round-trips its state', () => {
    expect(FixedThresholdGrader.restoreState(new FixedThresholdGrader(2.5).saveState()).threshold).toBe(2.5);
  });
});

describe('threshold strategies', () => {
  it('reads fixed thresholds', () => {
    expect(parseThresholdStrategy(undefined, undefined)).toEqual({ kind: 'fixed', value: 3 });
    expect(parseThresholdStrategy('2.25', undefined)).toEqual({ kind: 'fixed', value: 2.25 });
  });

  it('reads auto, with AWS parity on request', () => {
    expect(parseThresholdStrategy('auto', 'aws')).toEqual({ kind: 'trcf' });
    expect(parseThresholdStrategy('auto', undefined)).toEqual({ kind: AUTO_THRESHOLD });
  });

  it('rejects nonsense with the option named', () => {
    expect(() => parseThresholdStrategy('high', undefined)).toThrow(/--threshold/);
    expect(() => parseThresholdStrategy('Infinity', undefined)).toThrow(/--threshold/);
    expect(() => parseThresholdStrategy('3', 'aws')).toThrow(/--parity/);
    expect(() => parseThresholdStrategy('auto', 'gcp')).toThrow(/--parity/);
  });

  it('makes a fresh grader per model of the right kind', async () => {
    const config = resolveOptions({ dimensions: 2, shingleSize: 3, sampleSize: 64 });
    const fixed = (await graderFactory({ kind: 'fixed', value: 1.5 }))(config);
    expect(fixed).toBeInstanceOf(FixedThresholdGrader);
    const make = await graderFactory({ kind: 'trcf' });
    const a = make(config);
    const b = make(config);
    expect(a).not.toBe(b);
    expect(a).toBeInstanceOf(TrcfThresholder);
    const t = a as TrcfThresholder;
    expect([t.dimensions, t.shingleSize, t.timeDecay]).toEqual([2, 3, 1 / 640]);
    expect(describeStrategy({ kind: 'trcf' })).toMatch(/TRCF/);
    expect((await graderFactory({ kind: 'quality' }))(config)).toBeInstanceOf(QualityGrader);
    expect(AUTO_THRESHOLD).toBe('quality');
  });
});
