import type { Registry } from 'prom-client'
import { Gauge } from '../kernel/prom.ts' // issue 15: not prom-client's index
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, TornLog } from './mesh-store.ts'

/**
 * The store's health as the node reports it: `ok`; `degraded` (it works, but the last
 * open found a torn log: acknowledged writes were lost); `unhealthy` (it cannot write —
 * out of descriptors, a disk error — and the node answers 503 on /api/health and
 * heartbeats 'offline' until a probe succeeds again).
 */
export type StoreHealth =
  | { status: 'ok' }
  | { status: 'degraded'; tornLog: TornLog }
  | { status: 'unhealthy'; error: string; since: string }

export interface StoreMonitorInit {
  store: MeshStore
  logger?: Logger
  metrics?: Registry
  /** Time between probes (and durability marks); default 5 000 ms. */
  intervalMs?: number
}

/**
 * Probes the store every interval (a write and read of its own key), and at once when
 * asked (`check()`, e.g. after a request failed with a 5xx). A failed probe makes the
 * store unhealthy; the next failure reopens it: LevelDB keeps a background write error
 * (a compaction that hit the descriptor limit) until then, so without a reopen the node
 * would stay broken after the cause is gone. A healthy probe is followed by a
 * durability mark.
 */
export class StoreMonitor {
  readonly #init: StoreMonitorInit
  readonly #log: Logger
  readonly #intervalMs: number
  #health: StoreHealth
  #timer?: NodeJS.Timeout
  #checking?: Promise<StoreHealth>
  #listeners = new Set<(health: StoreHealth) => void>()

  constructor(init: StoreMonitorInit) {
    this.#init = init
    this.#log = (init.logger ?? silentLogger()).child({ area: 'store' })
    this.#intervalMs = init.intervalMs ?? 5_000
    const torn = init.store.tornLog
    this.#health = torn === undefined ? { status: 'ok' } : { status: 'degraded', tornLog: torn }
    if (init.metrics !== undefined) {
      const monitor = this
      new Gauge({
        name: 'mesh_store_healthy',
        help: 'Whether the store passed its last probe (1) or not (0)',
        registers: [init.metrics],
        collect() {
          this.set(monitor.#health.status === 'unhealthy' ? 0 : 1)
        },
      })
    }
  }

  get health(): StoreHealth {
    return this.#health
  }

  /** Called on every change of status. */
  onChange(listener: (health: StoreHealth) => void): void {
    this.#listeners.add(listener)
  }

  start(): void {
    if (this.#timer !== undefined) return
    const tick = () => {
      void this.check().finally(() => {
        if (this.#timer !== undefined) this.#timer = setTimeout(tick, this.#intervalMs).unref()
      })
    }
    this.#timer = setTimeout(tick, this.#intervalMs).unref()
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#checking
  }

  /** Probes now (joining a probe under way); resolves with the health it found, never rejects. */
  check(): Promise<StoreHealth> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined
    })
    return this.#checking
  }

  async #check(): Promise<StoreHealth> {
    const { store } = this.#init
    try {
      await store.probe().catch(async (err: unknown) => {
        // Failing twice in a row: not a passing error, maybe one LevelDB keeps until reopened.
        if (this.#health.status !== 'unhealthy') throw err
        await store.reopen()
        await store.probe()
      })
    } catch (err) {
      this.#set({
        status: 'unhealthy',
        error:
          err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err),
        since: this.#health.status === 'unhealthy' ? this.#health.since : new Date().toISOString(),
      })
      return this.#health
    }
    const torn = store.tornLog
    this.#set(torn === undefined ? { status: 'ok' } : { status: 'degraded', tornLog: torn })
    await store.mark().catch((err: unknown) => {
      this.#log.warn({ event: 'store.mark_failed', err }, 'could not write the durability mark')
    })
    return this.#health
  }

  #set(health: StoreHealth): void {
    const was = this.#health
    this.#health = health
    if (was.status === health.status) return
    if (health.status === 'unhealthy') {
      this.#log.error(
        { event: 'store.unhealthy', error: health.error, path: this.#init.store.path },
        'the store cannot write; reopening it until it can',
      )
    } else if (was.status === 'unhealthy') {
      this.#log.warn({ event: 'store.recovered', path: this.#init.store.path }, 'the store works again')
    }
    for (const listener of this.#listeners) listener(health)
  }
}
