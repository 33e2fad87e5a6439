import { defineConfig } from 'vite';

// As plain as a user's config: only `base: './'`, so the page works wherever dist/ is served
// (the test serves it at /tests/bundlers/vite-app/dist/).
export default defineConfig({
  base: './',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true },
});
