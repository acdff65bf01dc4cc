// The explorer's browser tests (e2e/*.e2e.ts): headless Debian Chromium
// against a `kubetrail demo` that e2e/global-setup.ts starts and stops.
// Run them with `make ui-e2e` (it builds the binary first).
import { defineConfig } from '@playwright/test';
import { launchOptions } from './e2e/browser';

export default defineConfig({
  testDir: './e2e',
  testMatch: '*.e2e.ts',
  outputDir: './e2e/artifacts/results',
  globalSetup: './e2e/global-setup.ts',
  // One worker: the machine is small, and every test shares the one demo.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list'], ['html', { outputFolder: './e2e/artifacts/report', open: 'never' }]],
  use: {
    browserName: 'chromium',
    launchOptions,
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    locale: 'en-US',
    timezoneId: 'UTC',
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
});
