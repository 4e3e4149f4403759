/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The node serves dist/ (node/api/static_files.h): hashed files under assets/ are cached for good,
// index.html is revalidated. `npm run dev` proxies the API to a local node.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2020',
    sourcemap: false,
    // One small app: a single JS chunk keeps the first load to two requests.
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/music': process.env.DISPOTIFY_API ?? 'http://127.0.0.1:8081',
      '/cluster': process.env.DISPOTIFY_API ?? 'http://127.0.0.1:8081',
      '/healthz': process.env.DISPOTIFY_API ?? 'http://127.0.0.1:8081',
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    include: ['src/**/*.test.{ts,tsx}'],
    // ctest runs this on a shared 2-core machine.
    pool: 'threads',
    poolOptions: { threads: { maxThreads: 2, minThreads: 1 } },
    // A budget against hangs, not a speed check: under ctest -j2 beside compilers, rendering 2,000
    // rows in jsdom took over the default 5 s.
    testTimeout: 60_000,
  },
});
