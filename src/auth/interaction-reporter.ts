import { type Logger, silentLogger } from '../log.ts'
import type { TrustScope, TrustStore } from './authority/index.ts'

export interface InteractionReporterInit {
  /** The trust store (a getter: a key rotation replaces the authority). */
  trust: () => Pick<TrustStore, 'recordInteraction'>
  logger?: Logger
  /** Accepted interactions of one principal are counted once per this many ms; default 5 000. */
  flushIntervalMs?: number
}

interface Target {
  did: string
  scope: TrustScope
  mesh?: string
}

/**
 * Feeds reputation (`TrustStore.recordInteraction`) from the hot paths — federation
 * messages, room updates, agent invocations — without making them wait or fail:
 *
 * - a refusal is recorded at once (it may demote: violations demote at once);
 * - accepted interactions are coalesced: a principal (or peer mesh) with any accepted
 *   interaction in a flush window is counted once for that window, so that a busy room
 *   does not turn every Yjs update into a store write.
 *
 * Failures are logged with context and counted (`failures`), never thrown to the caller.
 */
export class InteractionReporter {
  readonly #init: InteractionReporterInit
  readonly #log: Logger
  readonly #pending = new Map<string, Target & { reason: string }>()
  #timer: NodeJS.Timeout | undefined
  #chain: Promise<unknown> = Promise.resolve()
  failures = 0

  constructor(init: InteractionReporterInit) {
    this.#init = init
    this.#log = (init.logger ?? silentLogger()).child({ area: 'trust' })
  }

  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => {
      void this.flush()
    }, this.#init.flushIntervalMs ?? 5000)
    this.#timer.unref()
  }

  /** Flushes what is pending and stops the timer. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.flush()
  }

  accepted(did: string, reason: string, options: { scope?: TrustScope; mesh?: string } = {}): void {
    const target: Target = { did, scope: options.scope ?? 'principal', ...options }
    const key = `${target.scope}/${did}/${target.mesh ?? ''}`
    if (!this.#pending.has(key)) this.#pending.set(key, { ...target, reason })
  }

  refused(did: string, reason: string, options: { scope?: TrustScope; mesh?: string } = {}): void {
    this.#record({ did, scope: options.scope ?? 'principal', ...options }, 'refused', reason)
  }

  /** Writes the coalesced accepted interactions now. */
  async flush(): Promise<void> {
    const batch = [...this.#pending.values()]
    this.#pending.clear()
    for (const target of batch) this.#record(target, 'accepted', target.reason)
    await this.#chain
  }

  #record(target: Target, outcome: 'accepted' | 'refused', reason: string): void {
    this.#chain = this.#chain.then(async () => {
      try {
        await this.#init.trust().recordInteraction(target.did, outcome, reason, {
          scope: target.scope,
          ...(target.mesh !== undefined ? { mesh: target.mesh } : {}),
        })
      } catch (err) {
        this.failures++
        this.#log.error(
          { event: 'trust.record_failed', did: target.did, scope: target.scope, outcome, err },
          'recording an interaction failed',
        )
      }
    })
  }
}
