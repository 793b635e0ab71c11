// The page is served by `distill serve` under /demo/ (pipeline/serve/web.py), from web/dist.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/demo/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1024 },
});
