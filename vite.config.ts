import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { resolve } from 'node:path';

// One Vite build serves both pages: the dashboard (coordinator) at / and the worker page at
// /apps/worker/ (the share link), plus the benchmark page at /apps/bench/ and the views' gallery at
// /apps/dashboard/gallery.html (synthetic runs, measured by the benchmark). Workspace packages are imported as TypeScript source.
export default defineConfig({
  plugins: [react()],
  publicDir: 'public',
  build: {
    outDir: 'dist',
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: {
        dashboard: resolve(import.meta.dirname, 'index.html'),
        worker: resolve(import.meta.dirname, 'apps/worker/index.html'),
        bench: resolve(import.meta.dirname, 'apps/bench/index.html'),
        benchGpu: resolve(import.meta.dirname, 'apps/bench/gpu.html'),
        gallery: resolve(import.meta.dirname, 'apps/dashboard/gallery.html'),
      },
    },
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
