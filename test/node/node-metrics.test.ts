/**
 * Issue 15 (cold start): the node's default metrics (process, heap, GC, event loop) load
 * after ready, and a scrape that comes first loads them before it reads anything.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NodeMetrics } from '../../src/node/metrics.ts'

describe('NodeMetrics (issue 15)', () => {
  it('a first scrape has the default metrics; loading them again registers nothing twice', async () => {
    const metrics = new NodeMetrics()
    assert.equal(metrics.getSingleMetric('process_cpu_user_seconds_total'), undefined)
    const text = await metrics.metrics()
    assert.match(text, /process_cpu_user_seconds_total/)
    assert.match(text, /nodejs_eventloop_lag_seconds/)
    metrics.loadDefaults()
    const again = await metrics.metrics()
    assert.equal(again.match(/^# TYPE process_cpu_user_seconds_total/gm)?.length, 1)
  })
})
