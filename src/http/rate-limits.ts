import rateLimitPlugin, { normalizeIP, type RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import type { Registry } from 'prom-client'
// The bucket itself, not the connections module's index: the registry server loads this
// file without libp2p.
import { RateLimiter } from '../connections/rate-limiter.ts'
import { RateLimitedError } from '../errors.ts'
import { Counter } from '../kernel/prom.ts' // issue 15: not prom-client's index

/** One class's budget: up to `max` requests at once, refilled evenly over `windowMs`. */
export interface RateLimit {
  max?: number
  windowMs?: number
}

/**
 * Per-source token buckets on the HTTP API (`http.rateLimits`). Each request is charged
 * to one class; a source whose bucket is empty gets 429 MESH_RATE_LIMITED with
 * `Retry-After`, and every other source is still served.
 */
export interface RateLimitsInit {
  /**
   * Sign-in, per source IP: `GET /api/session/challenge` and `POST /api/session` share it
   * (a sign-in costs two); default 120 per 60 000 ms.
   */
  signIn?: RateLimit
  /** The unauthenticated `POST /api/invoke`, per source IP; default 120 per 60 000 ms. */
  invoke?: RateLimit
  /**
   * Every other request without a valid session — health, manifest, metrics, mesh list,
   * console files, y-websocket upgrades, and each bearer token refused — per source IP;
   * default 3 000 per 60 000 ms.
   */
  anonymous?: RateLimit
  /** Requests with a valid session, per principal (did) whatever its IP; default 6 000 per 60 000 ms. */
  session?: RateLimit
  /** Sources tracked per class; the least recently seen is forgotten (and starts full) first; default 10 000. */
  trackedSources?: number
}

export type RateClass = 'signIn' | 'invoke' | 'anonymous' | 'session'

export const RATE_LIMIT_DEFAULTS: Record<RateClass, Required<RateLimit>> = {
  signIn: { max: 120, windowMs: 60_000 },
  invoke: { max: 120, windowMs: 60_000 },
  anonymous: { max: 3_000, windowMs: 60_000 },
  session: { max: 6_000, windowMs: 60_000 },
}

/** Unauthenticated routes with their own, stricter class; any other route is `anonymous` or `session`. */
const ROUTE_CLASSES: Record<string, RateClass> = {
  'GET /api/session/challenge': 'signIn',
  'POST /api/session': 'signIn',
  'POST /api/invoke': 'invoke',
  // agents in foreign rooms: opening a capability session is a sign-in
  'POST /api/session/ucan': 'signIn',
}

const SESSION_GUARD = Symbol('mesh.sessionGuard')

/**
 * Marks the hook that authenticates a session (`requireSession`): a route that runs it is
 * charged per principal by the guard itself, after authentication, instead of per IP.
 */
export function markSessionGuard<F extends object>(guard: F): F {
  Object.defineProperty(guard, SESSION_GUARD, { value: true })
  return guard
}

/** What the session guard calls around authentication. */
export interface HttpRateLimits {
  /** Charges a failed authentication to the source IP. */
  authenticationFailed(request: FastifyRequest): Promise<void>
  /** Charges a request to the principal of its session, `request.session`. */
  authenticated(request: FastifyRequest): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    meshRateLimits?: HttpRateLimits
  }
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>

/**
 * @fastify/rate-limit's store contract over the node's token bucket: `max` is the
 * bucket's size, refilled at `max` per `timeWindow` (not a fixed window, which lets
 * twice `max` through across a window's edge).
 */
class TokenBucketStore {
  readonly #trackedSources: number
  #limiter?: RateLimiter

  constructor(options: { cache?: number }) {
    this.#trackedSources = options.cache ?? 10_000
  }

  incr(
    key: string,
    cb: (err: Error | null, res: { current: number; ttl: number }) => void,
    timeWindow: number,
    max: number,
  ): void {
    const limiter = this.#bucketsFor(timeWindow, max)
    const taken = limiter.take(key)
    cb(null, this.#state(limiter.available(key), taken, timeWindow, max))
  }

  read(
    key: string,
    cb: (err: Error | null, res: { current: number; ttl: number }) => void,
    timeWindow: number,
    max: number,
  ): void {
    const available = this.#bucketsFor(timeWindow, max).available(key)
    cb(null, this.#state(available, available >= 1, timeWindow, max))
  }

  child(options: { cache?: number }): TokenBucketStore {
    return new TokenBucketStore({ cache: options.cache ?? this.#trackedSources })
  }

  #bucketsFor(timeWindow: number, max: number): RateLimiter {
    this.#limiter ??= new RateLimiter({
      capacity: max,
      refillPerSecond: (max * 1000) / timeWindow,
      maxKeys: this.#trackedSources,
    })
    return this.#limiter
  }

  // The plugin reads "exceeded" as current > max, and the wait as ttl.
  #state(tokens: number, allowed: boolean, timeWindow: number, max: number) {
    const perMs = max / timeWindow
    if (allowed) return { current: max - Math.floor(tokens), ttl: Math.ceil((max - tokens) / perMs) }
    return { current: max + 1, ttl: Math.max(1, Math.ceil((1 - tokens) / perMs)) }
  }
}

const sourceIp = (request: FastifyRequest): string => normalizeIP(request.ip)

/**
 * Installs @fastify/rate-limit (token buckets per source) on `app` and charges every
 * route by class: `signIn` and `invoke` per source IP; a route guarded by
 * `requireSession` per principal once authenticated (a refused token is charged to the
 * source IP); every other route `anonymous` per source IP. A route may also set its own
 * `config.rateLimit` (the plugin's per-route options), answered the same way.
 */
export function registerRateLimits(app: FastifyInstance, init: RateLimitsInit, metrics: Registry): void {
  const limits = {} as Record<RateClass, Required<RateLimit>>
  for (const cls of Object.keys(RATE_LIMIT_DEFAULTS) as RateClass[]) {
    const limit = { ...RATE_LIMIT_DEFAULTS[cls], ...init[cls] }
    if (!(Number.isInteger(limit.max) && limit.max >= 1 && limit.windowMs >= 1)) {
      throw new RangeError(`http.rateLimits.${cls} needs max ≥ 1 (an integer) and windowMs ≥ 1`)
    }
    limits[cls] = limit
  }
  const refused = new Counter({
    name: 'mesh_http_rate_limited_total',
    help: 'HTTP requests refused by a rate limit, by class',
    labelNames: ['class'] as const,
    registers: [metrics],
  })

  const options: RateLimitPluginOptions = {
    global: false,
    // Its constructor and child() get the plugin's merged options, `cache` among them.
    store: TokenBucketStore as unknown as RateLimitPluginOptions['store'],
    cache: init.trackedSources ?? 10_000,
    keyGenerator: sourceIp,
    addHeadersOnExceeding: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
    },
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    onExceeded: () => refused.inc({ class: 'route' }),
    errorResponseBuilder: (_request, context) =>
      new RateLimitedError('too many requests from this source; retry later', { retryAfterMs: context.ttl }),
  }
  // Applied now rather than through app.register(): its onRoute hook must see the routes
  // declared right after createHttpApp returns, before fastify would load a registered
  // plugin. The plugin's body is synchronous.
  void (rateLimitPlugin as unknown as (app: FastifyInstance, o: RateLimitPluginOptions) => Promise<void>)(
    app,
    options,
  )

  const limiter = (cls: RateClass, keyGenerator: (request: FastifyRequest) => string = sourceIp): Limiter =>
    app.createRateLimit({ max: limits[cls].max, timeWindow: limits[cls].windowMs, keyGenerator })
  const limiters: Record<RateClass, Limiter> = {
    signIn: limiter('signIn'),
    invoke: limiter('invoke'),
    anonymous: limiter('anonymous'),
    session: limiter('session', (request) => (request.session as { did: string }).did),
  }
  const charge = async (cls: RateClass, request: FastifyRequest): Promise<void> => {
    const result = await limiters[cls](request)
    if (result.isAllowed || !result.isExceeded) return
    refused.inc({ class: cls })
    throw new RateLimitedError('too many requests from this source; retry later', {
      retryAfterMs: result.ttl,
      class: cls,
    })
  }

  app.decorate('meshRateLimits', {
    authenticationFailed: (request) => charge('anonymous', request),
    authenticated: (request) => charge('session', request),
  } satisfies HttpRateLimits)

  // Requests for no route at all are anonymous too: probing costs like any other request.
  app.addHook('onRequest', async (request) => {
    if (request.is404) await charge('anonymous', request)
  })
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.config?.rateLimit !== undefined) return
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const cls = methods.map((m) => ROUTE_CLASSES[`${m} ${route.url}`]).find((c) => c !== undefined)
    if (cls === undefined && usesSessionGuard(route)) return
    const onRequest = async (request: FastifyRequest) => charge(cls ?? 'anonymous', request)
    route.onRequest = [onRequest, ...[route.onRequest ?? []].flat()]
  })
}

function usesSessionGuard(route: RouteOptions): boolean {
  const hooks = [route.onRequest, route.preParsing, route.preValidation, route.preHandler]
  return hooks.flat().some((hook) => typeof hook === 'function' && SESSION_GUARD in hook)
}
