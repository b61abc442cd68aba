import { describe, expect, it } from 'vitest';
import { findOnPath, motoServerUnavailableReason, startDynalite } from '../support/local-aws.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local servers', () => {
  it('starts a server on 127.0.0.1 and kills its process group on stop()', async () => {
    const server = await startDynalite();
    try {
      expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(alive(server.pid)).toBe(true);
      const res = await fetch(server.endpoint, { method: 'POST' });
      expect(res.status).toBeGreaterThanOrEqual(400); // it answers (an unsigned request is refused)
    } finally {
      await server.stop();
    }
    expect(alive(server.pid)).toBe(false);
    await server.stop(); // idempotent
  });

  it('reports whether moto_server is available', () => {
    const reason = motoServerUnavailableReason();
    if (findOnPath('moto_server')) expect(reason).toBeUndefined();
    else expect(reason).toMatch(/pip install/);
  });
});

describe.skipIf(motoServerUnavailableReason() !== undefined)('moto_server launcher', () => {
  it('stops the whole group: the port no longer answers', async () => {
    const { startMotoServer } = await import('../support/local-aws.js');
    const server = await startMotoServer();
    let answered = false;
    try {
      const res = await fetch(`${server.endpoint}/moto-api/`);
      answered = res.status > 0;
    } finally {
      await server.stop();
    }
    expect(answered).toBe(true);
    await expect(fetch(`${server.endpoint}/moto-api/`)).rejects.toThrow();
  });

  it('fails clearly (and cleans up) when the server does not come up in time', async () => {
    const { startMotoServer } = await import('../support/local-aws.js');
    await expect(startMotoServer({ startTimeoutMs: 1 })).rejects.toThrow(/moto_server did not accept connections on 127\.0\.0\.1:\d+ within 1 ms\. stderr:/);
  });
});
