import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { MeshManifest } from '../manifest/index.ts'

export interface HealthInfo {
  status: 'ok'
  did: string
  peerId: string
  multiaddrs: string[]
  version: string
}

export interface CoreRoutesInit {
  health: () => HealthInfo
  manifest: () => MeshManifest
  metrics: Registry
}

/** Routes that need no session: health, the signed manifest, Prometheus metrics. */
export function registerCoreRoutes(app: FastifyInstance, init: CoreRoutesInit): void {
  app.get('/api/health', async () => init.health())

  app.get('/.well-known/mesh-manifest.json', async (_request, reply) => {
    void reply.header('cache-control', 'max-age=60')
    return init.manifest()
  })

  app.get('/metrics', async (_request, reply) => {
    void reply.type(init.metrics.contentType)
    return init.metrics.metrics()
  })
}
