// How the tests and the benchmark launch the browser: Debian's Chromium
// (apt-get install chromium), never a downloaded one. Playwright gives every
// launch a fresh temporary profile (--user-data-dir) of its own.
import type { LaunchOptions } from '@playwright/test';

export const CHROMIUM = process.env.KT_CHROMIUM ?? '/usr/bin/chromium';

export const launchOptions: LaunchOptions = {
  executablePath: CHROMIUM,
  headless: true,
  chromiumSandbox: false,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    // This machine refuses outside connections: nothing should try them.
    '--disable-quic',
    '--disable-domain-reliability',
    '--disable-features=Translate,OptimizationHints,MediaRouter',
  ],
};
