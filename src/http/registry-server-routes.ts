import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { RegistryService } from '../registry/index.ts'
import type { StoreHealth } from '../store/index.ts'
import { coreRoutes } from './routes/core.ts'
import { meshListRoutes, type RegistryRoutesInit, registryRoutes } from './routes/registry.ts'

export interface RegistryServerRoutesInit {
  registry: RegistryService
  health: () => { status: string; store?: StoreHealth }
  metrics: Registry
  perSource?: RegistryRoutesInit['perSource']
}

/** A standalone registry's routes: health, metrics, the public list and heartbeats. */
export async function registerRegistryServerRoutes(
  app: FastifyInstance,
  init: RegistryServerRoutesInit,
): Promise<void> {
  const { registry } = init
  await app.register(coreRoutes, { health: init.health, metrics: init.metrics })
  await app.register(meshListRoutes, { source: { list: async () => registry.all() } })
  await app.register(registryRoutes, { registry, perSource: init.perSource })
}
