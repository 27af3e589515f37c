import { isIP } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ForbiddenError } from '../errors.ts'

/**
 * Which names and origins a browser may reach this server by. Both lists come from the
 * operator (`http.allowedHosts`, `http.allowedOrigins`); loopback and IP literals need
 * no entry.
 */
export interface OriginGuardInit {
  /**
   * Host names this server also answers to, e.g. the public name a reverse proxy
   * forwards (`mesh.example.org`); matched without the port, case-insensitively.
   * Default none: only IP literals, `localhost`, `*.localhost` and the bind host.
   */
  allowedHosts?: readonly string[]
  /**
   * Origins (`https://app.example.org`) whose pages may call the API and open the
   * y-websocket, besides the server's own origin. Default none.
   */
  allowedOrigins?: readonly string[]
  /** The host the server binds (`http.host`); a name here is allowed like `allowedHosts`. */
  bindHost?: string
}

/**
 * Reads that any web page may make (CORS `*`, no credentials): the signed manifest,
 * the public mesh list (a registry browser on another origin), health.
 */
const PUBLIC_READS = new Set(['/.well-known/mesh-manifest.json', '/api/meshes/public', '/api/health'])

/**
 * Refuses DNS rebinding and cross-site requests, before anything else of a request runs:
 *
 * - Host: an attacker's page reaches a loopback or LAN node through its own name
 *   rebound to the node's address, so the browser sends `Host: evil.example`. A Host
 *   that is not an IP literal, `localhost`/`*.localhost` (a browser resolves those to
 *   its own loopback itself), the bind host or an allowed host is refused with
 *   MESH_FORBIDDEN. Ports are not compared: the name is what the attacker controls.
 * - Origin: a browser names the page's origin on every cross-origin fetch and on every
 *   WebSocket handshake. One that is neither the request's own (`Origin` host =
 *   `Host`) nor an allowed origin is refused with MESH_FORBIDDEN, except GET/HEAD of
 *   the public reads, which are answered with `access-control-allow-origin: *`.
 *   Clients that are not browsers (the CLI, y-websocket in Node, peers, the registry's
 *   heartbeats) send no Origin and pass.
 */
export function registerOriginGuard(app: FastifyInstance, init: OriginGuardInit = {}): void {
  const hosts = new Set((init.allowedHosts ?? []).map((h) => h.toLowerCase()))
  if (init.bindHost !== undefined) hosts.add(init.bindHost.toLowerCase())
  const origins = new Set((init.allowedOrigins ?? []).map(normalOrigin).filter((o) => o !== undefined))

  app.addHook('onRequest', async (request, reply) => {
    const host = request.headers.host
    // HTTP/1.0 without Host: not a browser, so not a rebinding.
    if (host !== undefined && !hostAllowed(hostname(host), hosts)) {
      throw new ForbiddenError('this server does not answer to that Host', { host: host.slice(0, 256) })
    }
    const origin = request.headers.origin
    if (origin === undefined) return
    if (host !== undefined && sameOrigin(origin, host)) return
    const normal = normalOrigin(origin)
    if (normal !== undefined && origins.has(normal)) return
    if (isPublicRead(request)) {
      void reply.header('access-control-allow-origin', '*')
      return
    }
    throw new ForbiddenError('cross-origin request refused', { origin: origin.slice(0, 256) })
  })
  // A WebSocket handshake refused by a hook that runs before @fastify/websocket's own
  // leaves a socket the HTTP server no longer reads or closes (and `close()` then waits
  // on it forever). An accepted upgrade is hijacked and never gets here.
  app.addHook('onResponse', async (request) => {
    if (request.headers.upgrade !== undefined) request.raw.socket.destroy()
  })
}

function isPublicRead(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false
  if (request.headers.upgrade !== undefined) return false
  return PUBLIC_READS.has(request.url.split('?')[0] ?? '')
}

/** `Host` without its port, lowercase, IPv6 brackets removed. */
function hostname(host: string): string {
  const h = host.trim().toLowerCase()
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'))
  const colon = h.lastIndexOf(':')
  return colon === -1 ? h : h.slice(0, colon)
}

function hostAllowed(name: string, allowed: ReadonlySet<string>): boolean {
  if (isIP(name) !== 0) return true
  if (name === 'localhost' || name.endsWith('.localhost')) return true
  return allowed.has(name) || allowed.has(name.replace(/\.$/, ''))
}

function sameOrigin(origin: string, host: string): boolean {
  try {
    const url = new URL(origin)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false
    return url.host === new URL(`${url.protocol}//${host.trim()}`).host
  } catch {
    return false
  }
}

/** An origin as browsers serialize it (lowercase, default port dropped); undefined for 'null' and garbage. */
function normalOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin)
    return url.origin === 'null' ? undefined : url.origin
  } catch {
    return undefined
  }
}
