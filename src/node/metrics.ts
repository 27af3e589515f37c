import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client'
import type { NodeLifecycle } from './parts.ts'

/** The process's default metrics and the node's own gauges, read at each scrape. */
export function collectNodeMetrics(metrics: Registry, parts: NodeLifecycle): void {
  collectDefaultMetrics({ register: metrics })
  const meshCount = new Gauge({
    name: 'mesh_discovered_meshes',
    help: 'Meshes this node knows through the DHT',
    registers: [metrics],
    collect: async () => {
      meshCount.set((await parts.find('discovery')?.list())?.length ?? 0)
    },
  })
}
