/**
 * The CLI does not print the AWS SDK's NodeVersionSupportWarning (a deliberate
 * choice, see src/cli/sdk-warnings.ts), and the SDK's own switch still shows it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_NODE_WARNING_SWITCH, silenceSdkNodeVersionWarning } from '../../src/cli/sdk-warnings.js';
import { MAIN, ROOT, requireBuilt } from './cli-support.js';

beforeAll(() => requireBuilt());

const home = mkdtempSync(join(tmpdir(), 'rcf-sdk-warn-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** `run` against nothing, without credentials: loads the SDK, fails fast (exit 1). */
function runWithoutCredentials(extraEnv: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: home, ...extraEnv };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'run', '--input-stream', 'nosuch', '--kinesis-endpoint', 'http://127.0.0.1:1', '--region', 'us-east-1', '--checkpoint', 'none'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const nodeMajor = Number(process.versions.node.split('.')[0]);

describe('AWS SDK NodeVersionSupportWarning', () => {
  it('is not printed by the rcf-stream command', async () => {
    const r = await runWithoutCredentials({});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Could not load credentials/); // the SDK did load and run
    expect(r.stderr).not.toMatch(/NodeVersionSupportWarning/);
  });

  it.runIf(nodeMajor < 22)('is printed again when the user sets the SDK switch to false', async () => {
    const r = await runWithoutCredentials({ [SDK_NODE_WARNING_SWITCH]: 'false' });
    expect(r.stderr).toMatch(/NodeVersionSupportWarning/);
  });

  it('only sets the switch when the user did not', () => {
    const env: NodeJS.ProcessEnv = {};
    silenceSdkNodeVersionWarning(env);
    expect(env[SDK_NODE_WARNING_SWITCH]).toBe('true');
    const chosen: NodeJS.ProcessEnv = { [SDK_NODE_WARNING_SWITCH]: 'false' };
    silenceSdkNodeVersionWarning(chosen);
    expect(chosen[SDK_NODE_WARNING_SWITCH]).toBe('false');
  });
});
