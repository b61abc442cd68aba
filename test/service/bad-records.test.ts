/**
 * What the service says about bad records: the dead letter carries the whole
 * story (reason, input); log lines at the default level carry no record
 * content; a corrupt KPL aggregate is reported as such, not as "invalid UTF-8".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { aggregate } from '../../src/aws/kpl.js';
import { createStream, localAwsConfig, putRaw, runToEnd, startKinesalite, type LocalServer } from './support.js';

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let dir: string;

beforeAll(async () => {
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(localAwsConfig({ kinesis: kinesalite.endpoint }));
  dir = mkdtempSync(join(tmpdir(), 'rcf-bad-records-'));
});

afterAll(async () => {
  kinesis?.destroy();
  await kinesalite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SECRET = 'card-4111111111111111';

describe('bad records (service)', () => {
  it('dead-letters a corrupt KPL aggregate with the KPL error, and keeps record content out of default-level logs', async () => {
    await createStream(kinesis, 'bad-kpl', 1);
    const good = aggregate([{ partitionKey: 'a', data: new TextEncoder().encode('{"time":1,"value":2}') }]);
    const corrupt = Uint8Array.from(good);
    corrupt[corrupt.length - 1]! ^= 0xff; // digest no longer matches
    await putRaw(kinesis, 'bad-kpl', [
      { data: '{"time":0,"value":1}', partitionKey: 'p' },
      { data: corrupt, partitionKey: 'p' },
      { data: `{"time":2,"value":"${SECRET}"}`, partitionKey: 'p' },
      { data: `{"time":3,"value":1,${SECRET}}`, partitionKey: 'p' },
    ]);
    const deadLetters = join(dir, 'dead.ndjson');
    const argv = ['--input-stream', 'bad-kpl', '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', 'none', '--exit-when-idle', '0.5', '--dead-letter', deadLetters];
    const r = await runToEnd(argv, 30_000, { stdout: new PassThrough() });
    expect(r.exitCode).toBe(0);
    expect(r.stats.badRecordsByKind).toEqual({ 'corrupt KPL aggregate': 1, 'not a number': 1, 'malformed JSON': 1 });
    const letters = readFileSync(deadLetters, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(letters[0]!['reason']).toBe('corrupt KPL aggregate: MD5 digest mismatch');
    expect(String(letters[1]!['reason'])).toContain(SECRET.slice(0, 10)); // the dead letter keeps the details
    // Default (warn) level: which record and what kind, never its content.
    expect(r.stderr).toMatch(/bad record recordId=shardId-000000000000:\d+ kind="corrupt KPL aggregate"/);
    expect(r.stderr).toMatch(/bad record recordId=shardId-000000000000:\d+ kind="not a number"/);
    expect(r.stderr).not.toContain(SECRET.slice(0, 10));

    // Opt-in: --log-level debug adds the reasons, content included.
    const debug = await runToEnd([...argv, '--log-level', 'debug', '--dead-letter', join(dir, 'dead2.ndjson')], 30_000, { stdout: new PassThrough() });
    expect(debug.stderr).toMatch(/bad record reason recordId=\S+ reason="field \\"value\\" is not a number: \\"card-4111/);
  });
});
