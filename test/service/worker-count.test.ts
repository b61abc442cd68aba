/**
 * The default `run --workers` (src/service/worker-count.ts), with the core count injected:
 * one thread per shard open at start, up to the cores and 8; one thread for the scopes whose
 * models span shards, and where worker threads cannot run or the shards could not be counted.
 */
import { describe, expect, it } from 'vitest';
import { defaultWorkers } from '../../src/service/worker-count.js';

describe('the default --workers', () => {
  it('is min(cores, 8, open shards) with --model-scope shard', () => {
    const shard = (cores: number, openShards: number): number => defaultWorkers({ scope: 'shard', openShards, cores, available: true });
    expect(shard(4, 2)).toBe(2);
    expect(shard(2, 2)).toBe(2);
    expect(shard(2, 5)).toBe(2);
    expect(shard(16, 20)).toBe(8);
    expect(shard(16, 6)).toBe(6);
    expect(shard(1, 4)).toBe(1);
    expect(shard(4, 1)).toBe(1);
    expect(shard(4, 0)).toBe(1);
  });

  it('is 1 (this thread) for key and stream scope, without the worker module, or with an unknown shard count', () => {
    expect(defaultWorkers({ scope: 'key', openShards: 4, cores: 8, available: true })).toBe(1);
    expect(defaultWorkers({ scope: 'stream', openShards: 4, cores: 8, available: true })).toBe(1);
    expect(defaultWorkers({ scope: 'shard', openShards: 4, cores: 8, available: false })).toBe(1);
    expect(defaultWorkers({ scope: 'shard', openShards: undefined, cores: 8, available: true })).toBe(1);
  });
});
