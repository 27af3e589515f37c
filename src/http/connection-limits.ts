import type { Server, ServerOptions } from 'node:http'
import type { Socket } from 'node:net'
import type { Registry } from 'prom-client'
import { Counter, Gauge } from '../kernel/prom.ts' // issue 15: not prom-client's index
import type { Logger } from '../log.ts'

/**
 * What one HTTP server grants a client connection (the slowloris defence). A socket that
 * upgraded to a WebSocket is no longer an HTTP request: Node stops timing it (the header
 * and request clocks run only while a request is being read, and `ws` clears the idle
 * timeout on upgrade), so long-lived y-websocket connections are not cut; they still
 * count against the connection caps, since each holds a descriptor.
 */
export interface HttpConnectionLimits {
  /** A request's headers must arrive whole within this time from its first byte (or the connection's open); default 10 000 ms. */
  headersTimeoutMs?: number
  /** A whole request (headers and body) must arrive within this time; default 30 000 ms. */
  requestTimeoutMs?: number
  /** An idle keep-alive connection between requests is closed after this; default 5 000 ms. */
  keepAliveTimeoutMs?: number
  /** A socket with no traffic either way for this long is closed (a stalled reader); default 60 000 ms. */
  idleTimeoutMs?: number
  /**
   * Open connections (WebSockets included) at most; the next ones are closed at once;
   * default 512. A client that opens many connections at once (a load test with an
   * unbounded pool) sees resets past this, not a queue.
   */
  maxConnections?: number
  /**
   * Open connections from one remote address at most; default 64. Behind a reverse
   * proxy on another host every client has the proxy's address: list it in
   * `perIpExempt`, and cap at the proxy.
   */
  maxConnectionsPerIp?: number
  /**
   * Addresses the per-address cap does not apply to (the total cap still does): this
   * host itself, which is also where a local reverse proxy connects from; default
   * 127.0.0.1 and ::1.
   */
  perIpExempt?: string[]
}

export const DEFAULT_CONNECTION_LIMITS: Required<HttpConnectionLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  maxConnections: 512,
  maxConnectionsPerIp: 64,
  perIpExempt: ['127.0.0.1', '::1', '::ffff:127.0.0.1'],
}

/** The timeouts as fastify's options (fastify's own defaults switch Node's header clock off). */
export function connectionServerOptions(limits: HttpConnectionLimits = {}): {
  http: ServerOptions
  requestTimeout: number
  keepAliveTimeout: number
  connectionTimeout: number
} {
  const l = { ...DEFAULT_CONNECTION_LIMITS, ...limits }
  const headersTimeout = Math.min(l.headersTimeoutMs, l.requestTimeoutMs)
  return {
    // Node checks the header and request clocks on this interval (its default is 30 s,
    // which would let a header timeout of 10 s run to 40 s).
    http: {
      headersTimeout,
      requestTimeout: l.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(25, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionTimeout: l.idleTimeoutMs,
  }
}

/**
 * Caps open connections in all and per remote address: a connection over either cap is
 * destroyed before a byte of it is read, and counted in
 * `mesh_http_connections_refused_total{reason}`.
 */
export function capConnections(
  server: Server,
  init: { limits?: HttpConnectionLimits | undefined; metrics: Registry; logger: Logger },
): void {
  const { maxConnections, maxConnectionsPerIp, perIpExempt } = {
    ...DEFAULT_CONNECTION_LIMITS,
    ...init.limits,
  }
  const exempt = new Set(perIpExempt)
  const perIp = new Map<string, number>()
  let open = 0
  const refused = new Counter({
    name: 'mesh_http_connections_refused_total',
    help: 'HTTP connections closed on arrival because a connection cap was reached',
    labelNames: ['reason'] as const,
    registers: [init.metrics],
  })
  new Gauge({
    name: 'mesh_http_connections_open',
    help: 'Open HTTP connections (WebSockets included)',
    registers: [init.metrics],
    collect() {
      this.set(open)
    },
  })
  let lastWarned = 0
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? 'unknown'
    const fromIp = perIp.get(ip) ?? 0
    const reason =
      open >= maxConnections
        ? 'total'
        : fromIp >= maxConnectionsPerIp && !exempt.has(ip)
          ? 'per_ip'
          : undefined
    if (reason !== undefined) {
      refused.inc({ reason })
      // One line a second at most: a flood must not become a log flood.
      if (Date.now() - lastWarned > 1_000) {
        lastWarned = Date.now()
        init.logger.warn({ event: 'http.connection.refused', reason, ip, open }, 'connection cap reached')
      }
      socket.destroy()
      return
    }
    open++
    perIp.set(ip, fromIp + 1)
    socket.once('close', () => {
      open--
      const left = (perIp.get(ip) ?? 1) - 1
      if (left === 0) perIp.delete(ip)
      else perIp.set(ip, left)
    })
  })
}
