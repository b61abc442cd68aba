/**
 * One meaning across commands (issue 16 item 11): Ctrl-C (SIGINT) ends detect, generate
 * and demo with exit status 130 after their summary, every --help says so, and --quiet
 * hides the summary line for generate and detect alike.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatNdjsonLine, temperatureRecords } from '../../src/generate/temperature.js';
import { MAIN, requireBuilt, runCli } from './cli-support.js';

beforeAll(() => requireBuilt());

/** Starts the command, waits for its first stdout bytes, sends SIGINT; its exit code and stderr. */
async function interrupt(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = once(child, 'close');
  try {
    await once(child.stdout, 'data');
    child.stdout.resume();
    child.kill('SIGINT');
    const [code] = (await closed) as [number | null];
    return { code, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

describe('Ctrl-C', () => {
  it('generate --count inf exits 130 after its summary', async () => {
    const r = await interrupt(['generate', '--count', 'inf', '--rate', '200']);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^rcf-stream generate: [\d,]+ records \([\d,]+ injected outliers\); interrupted\n$/);
  });

  it('demo --follow exits 130 after its summary', async () => {
    const r = await interrupt(['demo', '--follow', '--rate', '200']);
    expect(r.code).toBe(130);
  });

  it('is documented in every --help as exit status 130', async () => {
    for (const command of ['detect', 'generate', 'demo']) {
      const help = await runCli([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/130 when stopped by Ctrl-C \(SIGINT\)/);
    }
  });
});

describe('--quiet', () => {
  const input = Array.from(temperatureRecords({ count: 300 }), formatNdjsonLine).join('');

  it('detect: no summary line on stderr, the same output', async () => {
    const loud = await runCli(['detect', '--no-worker'], { input });
    const quiet = await runCli(['detect', '--no-worker', '--quiet'], { input });
    expect(loud.code).toBe(0);
    expect(quiet.code).toBe(0);
    expect(loud.stderr).toMatch(/^rcf-stream detect: 300 records in /);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toBe(loud.stdout);
  });

  it('generate: no summary line on stderr', async () => {
    const loud = await runCli(['generate', '--count', '10']);
    const quiet = await runCli(['generate', '--count', '10', '--quiet']);
    expect(loud.stderr).toMatch(/^rcf-stream generate: 10 records/);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toBe(loud.stdout);
  });
});
