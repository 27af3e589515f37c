import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export interface ConsoleRoutesInit {
  /**
   * The built console (`index.html` and `assets/`), as written by `npm run build:ui`;
   * default `CONSOLE_ROOT` (`<package>/dist/ui`).
   */
  root?: string
}

/** The package's directory: the nearest parent of this file with a package.json. */
function packageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const parent = dirname(dir)
    if (parent === dir) return process.cwd()
    dir = parent
  }
}

/** Where `npm run build:ui` writes the console. */
export const CONSOLE_ROOT = join(packageDir(), 'dist', 'ui')

// Paths that belong to the API, the y-websocket endpoint and the node's own documents:
// an unknown one there is a JSON 404 in the SPEC's shape, never the console's page.
const NOT_CONSOLE = /^\/(?:api|yjs|\.well-known|metrics)(?:[/?]|$)/

// The console loads only its own scripts and styles and talks only to this origin
// (HTTP and the y-websocket endpoint: CSP3's 'self' also matches ws:/wss: to the
// page's own host and port, so no bare `ws:` that would allow any host). Mantine sets
// CSS variables in style attributes, hence 'unsafe-inline' for styles, never for scripts.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:", // files in rooms (issue 18): previews are object URLs of fetched files
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mesh console not built</title></head>
<body><h1>The console is not built</h1>
<p>Run <code>npm run build:ui</code> (it also runs on <code>npm install</code>), then reload.
The HTTP API under <code>/api</code> works without it.</p></body></html>
`

/**
 * Serves the web console, a single-page app: `GET /` and every other GET that is not
 * under `/api`, `/yjs`, `/.well-known` or `/metrics` and asks for HTML answer its
 * `index.html` (the app routes in the browser); `/assets/*` are its hashed, immutable
 * files. Files are served by @fastify/static, which refuses paths that leave `root`.
 * Register it after the API routes (the fallback is a wildcard, so specific routes win
 * whatever the order, but an unknown API path must stay a JSON 404).
 */
export function registerConsole(app: FastifyInstance, init: ConsoleRoutesInit = {}): void {
  const root = resolve(init.root ?? CONSOLE_ROOT)
  const built = existsSync(join(root, 'index.html'))

  if (built && existsSync(join(root, 'assets'))) {
    void app.register(fastifyStatic, {
      root: join(root, 'assets'),
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      dotfiles: 'deny',
      immutable: true,
      maxAge: '365d',
      setHeaders: (res) => res.setHeader('x-content-type-options', 'nosniff'),
    })
  }
  // sendFile for index.html only; decorateReply on a second instance would clash.
  if (built) {
    void app.register(fastifyStatic, {
      root,
      serve: false,
      decorateReply: true,
    })
  }

  const page = async (_request: FastifyRequest, reply: FastifyReply) => {
    void reply
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
    if (!built) return reply.status(503).type('text/html; charset=utf-8').send(NOT_BUILT_PAGE)
    return reply.type('text/html; charset=utf-8').sendFile('index.html', root, { cacheControl: false })
  }

  app.get('/', page)
  app.get('/*', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const wantsHtml = (request.headers.accept ?? '').includes('text/html')
    // A path with an extension is a file that does not exist, not an app route.
    if (NOT_CONSOLE.test(path) || !wantsHtml || /\.[A-Za-z0-9]+$/.test(path)) {
      reply.callNotFound()
      return reply
    }
    return page(request, reply)
  })
}
