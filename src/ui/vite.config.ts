import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// The console's own build: `npm run build:ui` writes dist/ui, which the node serves at `/`.
// `npm run dev:ui` serves it with hot reload and proxies the API to a node on :7700.
const target = 'http://127.0.0.1:7700'

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2023',
    sourcemap: true,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: {
      '/api': target,
      '/.well-known': target,
      '/yjs': { target: target.replace('http', 'ws'), ws: true },
    },
  },
})
