/**
 * Headless Chromium for page tests, driven by playwright-core with the system's Debian
 * package (/usr/bin/chromium; .ci/run installs it when missing). `chromiumUnavailableReason`
 * says why the browser tests cannot run here, for a skip with a printed reason.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env['RCF_CHROMIUM'] ?? '/usr/bin/chromium';

/** Undefined when Chromium can be launched; else a sentence for the skip message. */
export function chromiumUnavailableReason(): string | undefined {
  if (!existsSync(CHROMIUM_PATH)) return `browser tests skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install -y chromium, or set RCF_CHROMIUM)`;
  return undefined;
}

export interface LaunchedBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile in a temporary directory, no network services, no GPU. */
export async function launchChromium(): Promise<LaunchedBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'rcf-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Collects console errors, page errors, dialogs and failed requests of a page. */
export function watchPage(page: Page): { errors: string[]; dialogs: string[] } {
  const errors: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return { errors, dialogs };
}

export type { Browser, Page };
