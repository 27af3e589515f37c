import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { type HttpListenInit, MESH_NODE_VERSION, originGuardOf } from './config.ts'
import { createHttpApp } from './http/index.ts'
import { createLogger, type Logger } from './log.ts'
import { RegistryService, registerMeshListRoute, registerRegistryRoutes } from './registry/index.ts'
import { MeshStore } from './store/index.ts'

export interface RegistryServerInit {
  dataDir: string
  /** Default 127.0.0.1:7800; allowed hosts and origins as a node's (config.ts). */
  http?: HttpListenInit
  /** Expected heartbeat interval; three missed ones make a mesh offline. Default 30 000 ms. */
  heartbeatIntervalMs?: number
  logger?: Logger
}

/** A standalone registry (`mesh registry`): the public list and heartbeats, no libp2p host. */
export class RegistryServer {
  readonly init: RegistryServerInit
  readonly logger: Logger
  readonly metrics = new Registry()
  #store?: MeshStore
  #registry?: RegistryService
  #app?: FastifyInstance
  #url?: string

  constructor(init: RegistryServerInit) {
    this.init = init
    this.logger = init.logger ?? createLogger()
  }

  get url(): string {
    if (this.#url === undefined) throw new Error('registry is not started')
    return this.#url
  }

  async start(): Promise<void> {
    const store = new MeshStore({ path: join(this.init.dataDir, 'db') })
    await store.open()
    this.#store = store
    try {
      collectDefaultMetrics({ register: this.metrics })
      const registry = new RegistryService({
        store,
        logger: this.logger,
        heartbeatIntervalMs: this.init.heartbeatIntervalMs ?? 30_000,
        metrics: this.metrics,
      })
      await registry.start()
      this.#registry = registry
      const app = createHttpApp({
        logger: this.logger,
        metrics: this.metrics,
        originGuard: originGuardOf(this.init.http),
      })
      app.get('/api/health', async () => ({ status: 'ok', role: 'registry', version: MESH_NODE_VERSION }))
      app.get('/metrics', async (_request, reply) => {
        void reply.type(this.metrics.contentType)
        return this.metrics.metrics()
      })
      registerMeshListRoute(app, { list: async () => registry.all() })
      registerRegistryRoutes(app, registry)
      const host = this.init.http?.host ?? '127.0.0.1'
      await app.listen({ host, port: this.init.http?.port ?? 7800 })
      this.#app = app
      const address = app.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      this.#url = `http://${host}:${port}`
      this.logger.info({ event: 'registry.started', url: this.#url }, 'registry started')
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop(): Promise<void> {
    await this.#app?.close()
    await this.#registry?.stop()
    await this.#store?.close()
    this.#app = undefined
    this.#registry = undefined
    this.#store = undefined
  }
}
