import { MeshError } from '../errors.ts'
import { defaultMetrics, Gauge, Registry } from '../kernel/prom.ts'
import type { NodeLifecycle } from './parts.ts'

/**
 * The node's metrics registry. prom-client's default metrics (process, heap, GC, event
 * loop) bring @opentelemetry/api, about 80 modules: they load just after the node is
 * ready (`loadDefaults`, issue 15: cold start), and a scrape that comes first loads
 * them before it reads anything, so every scrape has them.
 */
export class NodeMetrics extends Registry {
  #defaults: 'loaded' | Error | undefined

  /** Registers the default metrics once; a failure to load them is MESH_INTERNAL, every time asked. */
  loadDefaults(): void {
    if (this.#defaults === undefined) {
      try {
        defaultMetrics()({ register: this })
        this.#defaults = 'loaded'
      } catch (err) {
        this.#defaults = err as Error
      }
    }
    if (this.#defaults instanceof Error) {
      throw new MeshError('MESH_INTERNAL', `the default metrics did not load: ${this.#defaults.message}`)
    }
  }

  override async metrics(): Promise<string> {
    this.loadDefaults()
    return super.metrics()
  }
}

/** The node's own gauges, read at each scrape. */
export function collectNodeMetrics(metrics: NodeMetrics, parts: NodeLifecycle): void {
  const meshCount = new Gauge({
    name: 'mesh_discovered_meshes',
    help: 'Meshes this node knows through the DHT',
    registers: [metrics],
    collect: async () => {
      meshCount.set((await parts.find('discovery')?.list())?.length ?? 0)
    },
  })
}
