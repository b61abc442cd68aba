/// <reference lib="dom" />
/**
 * The live page in headless Chromium, fed by a real `run` against kinesalite: loads without
 * console errors, plots points once records arrive, marks an injected anomaly (chart marker
 * and table row with attribution), switches keys, and shows a key made of HTML and script as
 * text (no dialog, no injected element). Writes docs/images/live-page.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../../src/aws/clients.js';
import { LiveServer } from '../../src/http/live-server.js';
import { createStream, testClientConfig, putRaw, startKinesalite, startService, waitFor, type LocalServer } from '../service/support.js';
import { chromiumUnavailableReason, launchChromium, watchPage, type LaunchedBrowser } from '../support/browser.js';

const skip = chromiumUnavailableReason();
if (skip !== undefined) console.warn(skip);

const EVIL = '<img src=x onerror="window.__xss=1">"</script><script>window.__xss=2</script>';

let kinesalite: LocalServer;
let kinesis: KinesisClient;
let browser: LaunchedBrowser;

beforeAll(async () => {
  if (skip !== undefined) return;
  kinesalite = await startKinesalite();
  kinesis = createKinesisClient(testClientConfig({ kinesis: kinesalite.endpoint }));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  kinesis?.destroy();
  await kinesalite?.stop();
});

function readings(from: number, n: number, keys: string[]): { data: string; partitionKey: string }[] {
  const out: { data: string; partitionKey: string }[] = [];
  for (let i = from; i < from + n; i++) {
    const sensor = keys[i % keys.length]!;
    out.push({ data: JSON.stringify({ time: i, sensor, value: 30 + 2 * Math.sin(i / 5) + (i % 3) * 0.1 }), partitionKey: 'p' });
  }
  return out;
}

describe.skipIf(skip !== undefined)('live page in Chromium', () => {
  it('plots records as they arrive, marks an anomaly, switches keys, escapes key names', async () => {
    const stream = 'live-page-in';
    await createStream(kinesis, stream, 1);
    const live = await LiveServer.start({ host: '127.0.0.1', port: 0, pushIntervalMs: 150 });
    const page = await browser.context.newPage();
    const watched = watchPage(page);
    const { service } = await startService(
      ['--input-stream', stream, '--kinesis-endpoint', kinesalite.endpoint, '--start-position', 'TRIM_HORIZON', '--checkpoint', 'none', '--key-field', 'sensor', '--explain'],
      { observer: live, stdout: new PassThrough().resume() },
    );
    try {
      await page.goto(`${live.url}/`);
      await page.waitForFunction(() => document.body.dataset.connected === 'true', undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => Number(document.body.dataset.points ?? '0'))).toBe(0);

      const keys = ['alpha', 'beta', EVIL];
      // Records arrive over a while, as from a producer: 10 puts, each scored before the next.
      for (let round = 0; round < 10; round++) {
        await putRaw(kinesis, stream, readings(round * 150, 150, keys));
        await waitFor(() => service.stats().recordsScored === (round + 1) * 150, 20_000, `round ${round} scored`);
      }
      await page.waitForFunction(() => Number(document.body.dataset.points ?? '0') >= 100, undefined, { timeout: 30_000 });
      expect(await page.evaluate(() => Number(document.body.dataset.markers))).toBe(0);

      // The anomaly: one far-off reading of alpha.
      await putRaw(kinesis, stream, [{ data: JSON.stringify({ time: 1500, sensor: 'alpha', value: 500 }), partitionKey: 'p' }]);
      for (let round = 0; round < 4; round++) {
        await putRaw(kinesis, stream, readings(1501 + round * 150, 150, keys));
        await waitFor(() => service.stats().recordsScored === 1501 + (round + 1) * 150, 20_000, `round ${round} scored`);
      }
      await page.waitForFunction(() => Number(document.body.dataset.markers ?? '0') >= 1 && Number(document.body.dataset.anomalyRows ?? '0') >= 1, undefined, { timeout: 30_000 });
      const row = await page.locator('#anomalies tbody tr').first().locator('td').allTextContents();
      expect(row[1]).toBe('alpha');
      expect(row[3]).toBe('value=500');
      expect(row[5]).toMatch(/^value \S+ HIGH$/);

      // Switch to one key: its own points only, with its marker.
      await page.waitForFunction(() => Number(document.body.dataset.keys ?? '0') === 3, undefined, { timeout: 20_000 });
      await page.selectOption('#key', 'beta');
      await page.waitForFunction(() => document.body.dataset.key === 'beta' && Number(document.body.dataset.points) >= 100, undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => Number(document.body.dataset.markers))).toBe(0);
      expect(await page.locator('#anomalies tbody tr').count()).toBe(0);

      // The key made of markup: an option with exactly that text, nothing run or injected.
      const options = await page.locator('#key option').allTextContents();
      expect(options).toContain(EVIL);
      await page.selectOption('#key', EVIL);
      await page.waitForFunction(() => Number(document.body.dataset.points) >= 100, undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.locator('script').count()).toBe(2);

      await page.selectOption('#key', 'alpha');
      await page.waitForFunction(() => document.body.dataset.key === 'alpha' && Number(document.body.dataset.markers) >= 1, undefined, { timeout: 20_000 });
      mkdirSync('docs/images', { recursive: true });
      await page.screenshot({ path: 'docs/images/live-page.png', fullPage: true });

      expect(watched.dialogs).toEqual([]);
      expect(watched.errors).toEqual([]);
    } finally {
      await page.close();
      service.stop();
      await service.done;
      await live.close();
    }
  });
});
