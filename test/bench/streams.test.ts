import { describe, expect, it } from 'vitest';
import { createStream, take, TempStream, WAVE3_AMPLITUDES, WAVE5_AMPLITUDES, WaveStream } from '../../bench/streams.js';
import { loadVectorSet } from '../support/vectors.js';

function sameBits(actual: Float64Array, expected: Float64Array): number {
  // Index of the first difference, or -1.
  for (let i = 0; i < expected.length; i++) if (!Object.is(actual[i], expected[i])) return i;
  return actual.length === expected.length ? -1 : expected.length;
}

describe('bench streams', () => {
  it('TEMP seed 42 reproduces the inputs of the reference vectors', () => {
    const ref = loadVectorSet('temp_t50_s1');
    expect(sameBits(take(new TempStream(42), ref.config.rows), ref.inputs)).toBe(-1);
  });

  it('WAVE3 seed 5 reproduces the inputs of the reference vectors', () => {
    const ref = loadVectorSet('wave3_t30_s1_attr');
    expect(sameBits(take(new WaveStream(WAVE3_AMPLITUDES, 5), ref.config.rows), ref.inputs)).toBe(-1);
  });

  it('continues where the previous block stopped', () => {
    for (const kind of ['temp', 'wave3', 'wave5'] as const) {
      const whole = take(createStream(kind), 3000);
      const s = createStream(kind);
      const parts = new Float64Array(whole.length);
      const block = new Float64Array(1000 * s.dimensions);
      for (let b = 0; b < 3; b++) parts.set(s.fill(block), b * block.length);
      expect(s.position).toBe(3000);
      expect(sameBits(parts, whole)).toBe(-1);
    }
  });

  it('WAVE5 is deterministic, 5-D, f32-valued, with spikes', () => {
    const a = take(new WaveStream(WAVE5_AMPLITUDES, 5), 20_000);
    const b = take(createStream('wave5'), 20_000);
    expect(sameBits(a, b)).toBe(-1);
    expect(a.every((v) => Math.fround(v) === v)).toBe(true);
    // A spike multiplies a value by 4, beyond any amplitude + noise of its dimension.
    let spikes = 0;
    for (let i = 0; i < 20_000; i++) {
      for (let k = 0; k < 5; k++) if (Math.abs(a[i * 5 + k]!) > WAVE5_AMPLITUDES[k]! + 1) spikes++;
    }
    expect(spikes).toBeGreaterThan(10);
    expect(spikes).toBeLessThan(100);
  });

  it('rejects a block that cannot hold the points asked for', () => {
    expect(() => createStream('wave3').fill(new Float64Array(5), 2)).toThrow(RangeError);
  });
});
