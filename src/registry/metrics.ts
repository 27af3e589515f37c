import type { Registry as MetricsRegistry } from 'prom-client'
import { Counter, Gauge } from '../kernel/prom.ts' // issue 15: not prom-client's index

// prom-client refuses a second metric of one name in a registry; a registry (or client)
// that is stopped and started again in one process reuses the first.

/** The counter `name`, labelled by `outcome`, registered in `metrics` once. */
export function outcomeCounter(metrics: MetricsRegistry, name: string, help: string): Counter<'outcome'> {
  return (
    (metrics.getSingleMetric(name) as Counter<'outcome'> | undefined) ??
    new Counter({ name, help, labelNames: ['outcome'] as const, registers: [metrics] })
  )
}

/** The gauge `name`, registered in `metrics` once. */
export function singleGauge(metrics: MetricsRegistry, name: string, help: string): Gauge {
  return (
    (metrics.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [metrics] })
  )
}
