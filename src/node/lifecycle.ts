import type { Logger } from '../log.ts'

export type LifecycleStatus = 'stopped' | 'starting' | 'started' | 'stopping'

export interface Stoppable {
  stop(): unknown
}

export interface Startable extends Stoppable {
  start(): unknown
}

export interface LifecycleComponents {
  logger: Logger
}

export interface LifecycleInit {
  /** What the lifecycle runs, for its errors ("cannot start a node that is started"). */
  what: string
}

/**
 * The running parts of a composition, by name: started in order, stopped in reverse,
 * and nothing left set after stop; a start that fails stops again what it had started.
 * A part held by name is stopped as it is at stop time, so a part replaced while
 * running (a key rotation swaps the libp2p host) is the one that stops.
 */
export class Lifecycle<Parts extends object> {
  readonly #logger: Logger
  readonly #what: string
  #status: LifecycleStatus = 'stopped'
  #parts: Partial<Parts> = {}
  #stops: Array<() => unknown> = []

  constructor(components: LifecycleComponents, init: LifecycleInit) {
    this.#logger = components.logger
    this.#what = init.what
  }

  get status(): LifecycleStatus {
    return this.#status
  }

  /** Runs `startAll`, which adds the parts in order; when it throws, what it had started stops again. */
  async start(startAll: () => Promise<void>): Promise<void> {
    if (this.#status !== 'stopped') throw new Error(`cannot start a ${this.#what} that is ${this.#status}`)
    this.#status = 'starting'
    try {
      await startAll()
      this.#status = 'started'
    } catch (err) {
      await this.#unwind()
      this.#status = 'stopped'
      throw err
    }
  }

  /** Stops every part, last started first; false when there was nothing running to stop. */
  async stop(): Promise<boolean> {
    if (this.#status !== 'started') return false
    this.#status = 'stopping'
    await this.#unwind()
    this.#status = 'stopped'
    return true
  }

  /** Starts `part` and holds it under `name` (see `hold`). */
  async add<K extends keyof Parts>(name: K, part: Parts[K] & Startable): Promise<Parts[K]> {
    await part.start()
    return this.hold(name, part)
  }

  /** Holds a running `part` under `name`; stop stops whatever `name` holds then. */
  hold<K extends keyof Parts>(name: K, part: Parts[K] & Stoppable): Parts[K] {
    this.set(name, part)
    this.onStop(async () => (this.#parts[name] as Stoppable | undefined)?.stop())
    return part
  }

  /** Sets (or replaces) what `name` holds; cleared at stop. */
  set<K extends keyof Parts>(name: K, value: Parts[K]): Parts[K] {
    this.#parts[name] = value
    return value
  }

  /** A step for stop to run, after the steps registered later than it. */
  onStop(step: () => unknown): void {
    this.#stops.push(step)
  }

  /** What `name` holds; throws when it holds nothing (not started, or stopped). */
  get<K extends keyof Parts>(name: K): Parts[K] {
    const value = this.#parts[name]
    if (value === undefined) throw new Error(`${this.#what} is not started (${String(name)} missing)`)
    return value as Parts[K]
  }

  /** What `name` holds, if anything. */
  find<K extends keyof Parts>(name: K): Parts[K] | undefined {
    return this.#parts[name]
  }

  async #unwind(): Promise<void> {
    for (let step = this.#stops.pop(); step !== undefined; step = this.#stops.pop()) {
      try {
        await step()
      } catch (err) {
        this.#logger.error({ event: 'node.stop_failed', err }, 'a component failed to stop')
      }
    }
    this.#parts = {}
  }
}
