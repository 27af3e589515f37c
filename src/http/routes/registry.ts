import rateLimit, { normalizeIP, type RateLimitOptions } from '@fastify/rate-limit'
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { heartbeatAcceptedSchema, meshListQuerySchema, meshPageSchema } from '../../api/index.ts'
import { isMeshError, RateLimitedError } from '../../errors.ts'
import {
  heartbeatSchema,
  type PublicMeshSource,
  pageMeshes,
  type RegistryService,
} from '../../registry/index.ts'
import { toHttpError } from '../http-app.ts'

/**
 * `GET /api/meshes/public?q=&status=&sort=&limit=&cursor=` → `{meshes, nextCursor}`
 * (SPEC §3), over any source: a registry's heartbeats or a node's discoveries. Public:
 * no token. `sort` is `name` (default) or `age` (oldest first; what discovery asks).
 */
export const meshListRoutes: FastifyPluginAsync<{ source: PublicMeshSource }> = async (
  fastify,
  { source },
) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/meshes/public',
    { schema: { querystring: meshListQuerySchema, response: { 200: meshPageSchema } } },
    async (request) => {
      const { q, status, sort, limit, cursor, capability } = request.query
      return pageMeshes(await source.list(), {
        q,
        status,
        sort,
        limit: limit === undefined ? undefined : Number(limit),
        cursor,
        capability, // reachable by URL (SPEC §10)
      })
    },
  )
}

export interface RegistryRoutesInit {
  registry: RegistryService
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
 * codes (SPEC §3). The list is registered apart, with `meshListRoutes`, because
 * a node that serves a registry lists what it discovered too.
 *
 * Three budgets: requests per source address here (`init.perSource`); in the registry,
 * new meshes per source address, charged only when one is admitted, and heartbeats per
 * did, charged only once a heartbeat is proven to be the did's own and fresh.
 */
export const registryRoutes: FastifyPluginAsync<RegistryRoutesInit> = async (app, init) => {
  const { registry } = init
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
  // In this plugin's scope, so the limiter applies to this route alone. If the app
  // already registered the plugin (a global limit), that one applies this route's own
  // config instead.
  if (!app.hasDecorator('rateLimit')) await app.register(rateLimit, { global: false })
  registerHeartbeatRoute(app, registry, perSource)
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
