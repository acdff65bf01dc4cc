/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The Go server embeds ../ui/dist/app (package ui) and serves it at / with the API under
// /api/v1 on the same origin; in development Vite proxies the API to a local
// `kubetrail demo`.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../ui/dist/app',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:7070' },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    css: false,
  },
});
