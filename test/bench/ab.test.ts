import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, requireBuilt } from '../cli/cli-support.js';

/**
 * bench/ab.ts, the A/B harness of the optimisation log, run as a user runs it. At 100 trees,
 * 1-D, the I/O buffer for the warm-up block grows the kernel's memory, which detaches the old
 * ArrayBuffer: a view built on the buffer read before that call throws.
 */
describe('bench/ab.js', () => {
  it('runs an A/A pairing on a configuration whose warm-up grows the kernel memory', () => {
    requireBuilt();
    const script = join(ROOT, 'dist', 'bench', 'ab.js');
    expect(existsSync(script)).toBe(true);
    const wasm = join(ROOT, 'build', 'rcf.wasm');
    const run = spawnSync(process.execPath, [script, wasm, wasm, 't100-1d', '3', '200'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^t100-1d: B\/A speed \d+\.\d{3} \(quartiles \d+\.\d{3}, \d+\.\d{3}; 3 rounds of 200\)/);
    expect(run.stdout).toContain('score sums equal');
  });
});
