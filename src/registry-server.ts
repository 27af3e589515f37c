import { join } from 'node:path'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { type HttpListenInit, MESH_NODE_VERSION, originGuardOf, type RegistryLimits } from './config.ts'
import {
  createHttpApp,
  type FastifyInstance,
  listenOrConflict,
  registerRegistryServerRoutes,
  toHttpError,
} from './http/index.ts'
import { createLogger, type Logger } from './log.ts'
import { RegistryService } from './registry/index.ts'
import { MeshStore, StoreMonitor } from './store/index.ts'

export interface RegistryServerInit {
  dataDir: string
  /** Default 127.0.0.1:7800; allowed hosts and origins as a node's (config.ts). */
  http?: HttpListenInit
  /** Expected heartbeat interval; three missed ones make a mesh offline. Default 30 000 ms. */
  heartbeatIntervalMs?: number
  /** Admission stamp, capacity and rate limits; defaults in `RegistryLimits`. */
  limits?: RegistryLimits
  /** How often the store is probed, as a node's `store.probeIntervalMs`; default 5 000 ms. */
  storeProbeIntervalMs?: number
  logger?: Logger
}

/** A standalone registry (`mesh registry`): the public list and heartbeats, no libp2p host. */
export class RegistryServer {
  readonly init: RegistryServerInit
  readonly logger: Logger
  readonly metrics = new Registry()
  #store?: MeshStore
  #monitor?: StoreMonitor
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
    const store = new MeshStore({ path: join(this.init.dataDir, 'db'), logger: this.logger })
    await store.open()
    this.#store = store
    try {
      const monitor = new StoreMonitor({
        store,
        logger: this.logger,
        metrics: this.metrics,
        ...(this.init.storeProbeIntervalMs !== undefined
          ? { intervalMs: this.init.storeProbeIntervalMs }
          : {}),
      })
      monitor.start()
      this.#monitor = monitor
      collectDefaultMetrics({ register: this.metrics })
      const { perSource, ...limits } = this.init.limits ?? {}
      const registry = new RegistryService({
        store,
        logger: this.logger,
        heartbeatIntervalMs: this.init.heartbeatIntervalMs ?? 30_000,
        metrics: this.metrics,
        ...limits,
      })
      await registry.start()
      this.#registry = registry
      const app = createHttpApp({
        logger: this.logger,
        metrics: this.metrics,
        originGuard: originGuardOf(this.init.http),
        ...(this.init.http?.connections !== undefined ? { connections: this.init.http.connections } : {}),
      })
      app.addHook('onError', async (_request, _reply, err) => {
        if (toHttpError(err).status >= 500) void monitor.check()
      })
      await registerRegistryServerRoutes(app, {
        registry,
        health: () => ({
          status: monitor.health.status,
          store: monitor.health,
          role: 'registry',
          version: MESH_NODE_VERSION,
        }),
        metrics: this.metrics,
        perSource,
      })
      const host = this.init.http?.host ?? '127.0.0.1'
      await listenOrConflict(app, host, this.init.http?.port ?? 7800) // issue 14: a busy port is MESH_CONFLICT
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
    await this.#monitor?.stop()
    await this.#store?.close()
    this.#monitor = undefined
    this.#app = undefined
    this.#registry = undefined
    this.#store = undefined
  }
}
