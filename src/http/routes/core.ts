import type { FastifyPluginAsync } from 'fastify'
import type { Registry } from 'prom-client'
import type { Health } from '../../api/index.ts'
import { UnavailableError } from '../../errors.ts'
import type { MeshManifest } from '../../manifest/index.ts'
import type { StoreHealth } from '../../store/index.ts'

export interface HealthInfo {
  /** 'degraded': working, but the store lost acknowledged writes at its last open (see `store`). */
  status: 'ok' | 'degraded' | 'unhealthy'
  /** The store's own report (store/store-monitor.ts). */
  store: StoreHealth
  did: string
  peerId: string
  multiaddrs: string[]
  version: string
  /** reachability (SPEC §10): public (AutoNAT), relayed, or unknown; relay service state. */
  reachability?: Health['reachability']
}

export interface CoreRoutesInit {
  /** A node's HealthInfo, or another server's report (the registry's) of the same form. */
  health: () => { status: string; store?: StoreHealth }
  /** The signed manifest; a server without one (the registry) serves no manifest route. */
  manifest?: () => MeshManifest
  metrics: Registry
}

/** Routes that need no session: health, the signed manifest, Prometheus metrics. */
export const coreRoutes: FastifyPluginAsync<CoreRoutesInit> = async (app, init) => {
  app.get('/api/health', async () => healthOrUnavailable(init.health()))

  const manifest = init.manifest
  if (manifest !== undefined) {
    app.get('/.well-known/mesh-manifest.json', async (_request, reply) => {
      void reply.header('cache-control', 'max-age=60')
      return manifest()
    })
  }

  app.get('/metrics', async (_request, reply) => {
    void reply.type(init.metrics.contentType)
    return init.metrics.metrics()
  })
}

/**
 * A health report, or, while the node cannot serve (its store cannot write), 503
 * MESH_UNAVAILABLE with the report in `details`, so that a load balancer or monitor that
 * looks only at the status takes the node out until it recovers.
 */
export function healthOrUnavailable<T extends { status: string; store?: StoreHealth }>(health: T): T {
  if (health.status !== 'unhealthy') return health
  const reason =
    health.store?.status === 'unhealthy' ? `: the store cannot write (${health.store.error})` : ''
  throw new UnavailableError(`this node is unhealthy${reason}`, { ...health })
}
