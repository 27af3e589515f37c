import rateLimit, { normalizeIP, type RateLimitOptions } from '@fastify/rate-limit'
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { AbortOptions } from '@libp2p/interface'
import type { FastifyInstance } from 'fastify'
import { heartbeatAcceptedSchema, meshListQuerySchema, meshPageSchema } from '../api/index.ts'
import { isMeshError, RateLimitedError } from '../errors.ts'
import { toHttpError } from '../http/http-app.ts'
import { heartbeatSchema } from './heartbeat.ts'
import { type PublicMesh, pageMeshes } from './mesh-list.ts'
import type { RegistryService } from './registry-service.ts'

/** Anything that can list meshes: the registry, or a node's own discoveries. */
export interface PublicMeshSource {
  /** Every mesh known, in any order, with its current status. */
  list(options?: AbortOptions): Promise<PublicMesh[]>
}

/**
 * `GET /api/meshes/public?q=&status=&sort=&limit=&cursor=` → `{meshes, nextCursor}`
 * (SPEC §3), over any source: a registry's heartbeats or a node's discoveries. Public:
 * no token. `sort` is `name` (default) or `age` (oldest first; what discovery asks).
 */
export function registerMeshListRoute(fastify: FastifyInstance, source: PublicMeshSource): void {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/meshes/public',
    { schema: { querystring: meshListQuerySchema, response: { 200: meshPageSchema } } },
    async (request) => {
      const { q, status, sort, limit, cursor } = request.query
      return pageMeshes(await source.list(), {
        q,
        status,
        sort,
        limit: limit === undefined ? undefined : Number(limit),
        cursor,
      })
    },
  )
}

export interface RegistryRoutesInit {
  /**
   * Heartbeats accepted per source address (fastify's `request.ip`: the socket's peer
   * unless the app trusts a proxy; IPv6 counted per /64) in each window, whatever they
   * carry; the next are MESH_RATE_LIMITED (429, `retry-after`) before any parsing or
   * signature check. Default 30 per heartbeat interval: a NAT with a dozen meshes fits.
   */
  perSource?: { max?: number; windowMs?: number }
}

/**
 * The registry's own route: `POST /api/meshes/heartbeat` → `200 {ok:true, status}`.
 * The body must match the heartbeat schema exactly; refusals carry the registry's
 * codes (SPEC §3). The list is registered apart, with `registerMeshListRoute`, because
 * a node that serves a registry lists what it discovered too.
 *
 * Three budgets: requests per source address here (`init.perSource`); in the registry,
 * new meshes per source address, charged only when one is admitted, and heartbeats per
 * did, charged only once a heartbeat is proven to be the did's own and fresh.
 */
export function registerRegistryRoutes(
  app: FastifyInstance,
  registry: RegistryService,
  init: RegistryRoutesInit = {},
): void {
  const perSource: RateLimitOptions = {
    max: init.perSource?.max ?? 30,
    timeWindow: init.perSource?.windowMs ?? registry.heartbeatIntervalMs,
    errorResponseBuilder: (_request, context) => {
      // Refused before the registry sees it; counted here with the rest of the refusals.
      registry.recordRefusal('MESH_RATE_LIMITED')
      return new RateLimitedError(`too many heartbeats from this address; retry in ${context.after}`, {
        retryAfterMs: context.ttl,
      })
    },
  }
  // Scoped, so the limiter applies to this route alone. If the app already registered
  // the plugin (a global limit), that one applies this route's own config instead.
  void app.register(async (scope) => {
    if (!scope.hasDecorator('rateLimit')) await scope.register(rateLimit, { global: false })
    registerHeartbeatRoute(scope, registry, perSource)
  })
}

function registerHeartbeatRoute(
  app: FastifyInstance,
  registry: RegistryService,
  perSource: RateLimitOptions,
): void {
  app.post(
    '/api/meshes/heartbeat',
    {
      config: { rateLimit: perSource },
      schema: {
        body: heartbeatSchema,
        response: { 200: heartbeatAcceptedSchema },
      },
      // Bodies refused by fastify itself (bad JSON, too large, schema) never reach the
      // registry; count them too. Errors thrown by the registry are counted there.
      onError: async (_request, _reply, error) => {
        if (!isMeshError(error)) registry.recordRefusal(toHttpError(error).body.error.code)
      },
    },
    async (request) => {
      // The same address key as the per-source limit: IPv6 by /64.
      const { status } = await registry.heartbeat(request.body, { source: normalizeIP(request.ip) })
      return { ok: true, status }
    },
  )
}
