import { describe, expect, it } from 'vitest';
import { HealthMonitor } from '../../src/metrics/health.js';
import type { PipelineStats } from '../../src/pipeline/contracts.js';
import { DetectionBatch } from '../../src/detect/detector.js';

function stats(over: Partial<PipelineStats> & { saved?: number; failed?: number; behind?: number; shards?: number } = {}): PipelineStats {
  return {
    uptimeSeconds: 1,
    recordsRead: over.recordsScored ?? 0,
    recordsScored: over.recordsScored ?? 0,
    anomalies: 0,
    badRecords: 0,
    badRecordsByKind: {},
    deadLettered: { file: 0, stream: 0 },
    outputRecords: 0,
    notifications: { queued: 0, suppressed: 0, dropped: 0 },
    models: 1,
    evictions: 0,
    checkpoints: { saved: over.saved ?? 0, failed: over.failed ?? 0, lastSavedAt: undefined },
    source: { shardsReading: over.shards ?? 1, shardsWaiting: 0, shardsFinished: 0, millisBehindLatest: { 'shardId-0': over.behind ?? 0 } },
  };
}

describe('HealthMonitor', () => {
  it('is ready once attached with a shard, and not after the stop', () => {
    const h = new HealthMonitor();
    expect(h.readiness(undefined)).toMatchObject({ ok: false, status: 'starting', reasons: ['models not loaded yet'] });
    h.attached();
    expect(h.readiness(stats({ shards: 0 }))).toMatchObject({ ok: false, reasons: ['no shard assigned yet'] });
    expect(h.readiness(stats())).toMatchObject({ ok: true, status: 'running' });
    h.stopping();
    expect(h.readiness(stats())).toMatchObject({ ok: false, status: 'stopping' });
    h.stopped({ exitCode: 0, reason: 'SIGTERM' });
    expect(h.readiness(stats())).toMatchObject({ ok: false, status: 'stopped' });
    expect(h.health(stats()).ok).toBe(true);
  });

  it('turns unhealthy after N checkpoint failures in a row, healthy again after a save', () => {
    const h = new HealthMonitor({ maxCheckpointFailures: 3 });
    h.attached();
    expect(h.health(stats({ saved: 2, failed: 0 })).ok).toBe(true);
    expect(h.health(stats({ saved: 2, failed: 2 })).ok).toBe(true);
    expect(h.health(stats({ saved: 2, failed: 3 }))).toMatchObject({ ok: false, reasons: ['the last 3 checkpoint saves failed'] });
    expect(h.health(stats({ saved: 3, failed: 3 })).ok).toBe(true);
    expect(h.health(stats({ saved: 3, failed: 5 })).ok).toBe(true);
    expect(h.health(stats({ saved: 3, failed: 6 })).ok).toBe(false);
  });

  it('is unhealthy when behind the tip and nothing was scored for stallMs (injected clock)', () => {
    let now = 1_000_000;
    const h = new HealthMonitor({ stallMs: 60_000, now: () => now });
    h.attached();
    expect(h.health(stats({ recordsScored: 10, behind: 5000 })).ok).toBe(true);
    now += 59_000;
    expect(h.health(stats({ recordsScored: 10, behind: 5000 })).ok).toBe(true);
    now += 1_000;
    expect(h.health(stats({ recordsScored: 10, behind: 5000 })).reasons).toEqual(['behind the stream\'s tip and no record scored for 60 s']);
    // At the tip, an idle stream is healthy.
    expect(h.health(stats({ recordsScored: 10, behind: 0 })).ok).toBe(true);
    // Progress clears it.
    expect(h.health(stats({ recordsScored: 11, behind: 5000 })).ok).toBe(true);
  });

  it('is unhealthy after a failed stop', () => {
    const h = new HealthMonitor();
    h.attached();
    h.stopped({ exitCode: 1, reason: 'delivery failed' });
    expect(h.health(stats())).toMatchObject({ ok: false, status: 'stopped', reasons: ['stopped with a failure: delivery failed'] });
  });
});

describe('safeObserver', () => {
  it('reports the first error, turns the observer off, and never throws into the pipeline', async () => {
    const { safeObserver } = await import('../../src/pipeline/observers.js');
    const errors: unknown[] = [];
    let calls = 0;
    let stoppedCalls = 0;
    const o = safeObserver(
      {
        batchScored: () => {
          calls++;
          throw new Error('boom');
        },
        stopped: () => {
          stoppedCalls++;
        },
      },
      (e) => errors.push(e),
    );
    const event = { shardId: 's', batch: new DetectionBatch(1, 1), anomalies: 0, latencyMs: 0, recordId: () => 's:1' };
    expect(() => o.batchScored!(event)).not.toThrow();
    expect(() => o.batchScored!(event)).not.toThrow();
    o.stopped!({ exitCode: 0, reason: 'stop' });
    expect(calls).toBe(1);
    expect(stoppedCalls).toBe(0);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    // Calls the observer does not have stay absent.
    expect(o.started).toBeUndefined();
  });
});
