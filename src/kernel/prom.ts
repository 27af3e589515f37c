/**
 * prom-client's metric classes without its index (issue 15, cold start): the index also
 * loads the default metrics, and with them @opentelemetry/api — about 80 modules a node
 * start does not need before it is ready. The classes are the very ones the index exports
 * (one CommonJS module each), so a Registry or Counter from either is the same class.
 * The default metrics load on their own (`defaultMetrics`).
 */
import { createRequire } from 'node:module'
import type * as Prom from 'prom-client'

const requireProm = createRequire(import.meta.url)

export const Registry: typeof Prom.Registry = requireProm('prom-client/lib/registry.js')
export type Registry = Prom.Registry
export const Counter: typeof Prom.Counter = requireProm('prom-client/lib/counter.js')
export type Counter<T extends string = string> = Prom.Counter<T>
export const Gauge: typeof Prom.Gauge = requireProm('prom-client/lib/gauge.js')
export type Gauge<T extends string = string> = Prom.Gauge<T>

/** prom-client's `collectDefaultMetrics` (process, heap, GC, event loop); loads it on the first call. */
export function defaultMetrics(): typeof Prom.collectDefaultMetrics {
  return requireProm('prom-client/lib/defaultMetrics.js')
}
