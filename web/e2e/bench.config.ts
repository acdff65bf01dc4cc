// The explorer's performance benchmark (make bench-ui): not a test, no
// assertions on the figures; it prints them. See bench-ui.bench.ts.
import { defineConfig } from '@playwright/test';
import { launchOptions } from './browser';

export default defineConfig({
  testDir: '.',
  testMatch: 'bench-ui.bench.ts',
  outputDir: './artifacts/bench-results',
  workers: 1,
  retries: 0,
  timeout: 30 * 60_000,
  expect: { timeout: 120_000 },
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    launchOptions,
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    timezoneId: 'UTC',
    actionTimeout: 120_000,
    navigationTimeout: 120_000,
    trace: 'off',
  },
});
