import type { AbortOptions } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../log.ts'
import { forEachLimited } from './concurrency.ts'
import type { MeshLibp2p } from './host.ts'

export interface BootstrapTargetsOptions extends AbortOptions {
  /** This mesh's did: never a target. */
  self: string
}

/**
 * Where a node alone finds meshes to dial, beyond its fixed bootstrap peers: one entry
 * per mesh (its multiaddrs, with `/p2p/<peerId>`), best first. Discovery is given one
 * (the registry's public list, see src/registry/registry-bootstrap.ts) and knows
 * nothing of where it comes from. It never rejects: a source that cannot answer logs
 * why and returns what it has, or nothing.
 */
export interface BootstrapSource {
  targets(options: BootstrapTargetsOptions): Promise<Multiaddr[][]>
}

export interface NetworkJoinComponents {
  libp2p: Pick<MeshLibp2p, 'dial'>
  logger: Logger
  /** Asked at every join; default none. */
  source?: BootstrapSource
}

export interface NetworkJoinInit {
  self: string
  /** Multiaddrs dialled at every join. */
  bootstrap: string[]
  /** Meshes from the source connected at most per join, and dials in flight. */
  maxSourceDials: number
  /** Per dial. */
  dialTimeoutMs: number
}

/**
 * Joins the network when the node is alone: dials every bootstrap peer, and the meshes
 * the bootstrap source lists, in its order, with `maxSourceDials` in flight, passing
 * over dead ones until `maxSourceDials` answered or the list ran out.
 */
export class NetworkJoin {
  readonly #components: NetworkJoinComponents
  readonly #init: NetworkJoinInit
  readonly #log: Logger

  constructor(components: NetworkJoinComponents, init: NetworkJoinInit) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.child({ component: 'discovery' })
  }

  async join(options: AbortOptions = {}): Promise<void> {
    const targets: Multiaddr[][] = []
    for (const addr of this.#init.bootstrap) {
      try {
        targets.push([multiaddr(addr)])
      } catch (err) {
        this.#log.warn({ event: 'discovery.bootstrap_invalid', addr, err }, 'invalid bootstrap multiaddr')
      }
    }
    const listed = (await this.#components.source?.targets({ ...options, self: this.#init.self })) ?? []
    const max = this.#init.maxSourceDials
    let connected = 0
    let tried = 0
    await Promise.all([
      ...targets.map((addrs) => this.#dial(addrs, options)),
      forEachLimited(listed, max, async (addrs) => {
        if (connected >= max || options.signal?.aborted === true) return
        tried++
        if (await this.#dial(addrs, options)) connected++
      }),
    ])
    if (listed.length > 0) {
      this.#log.info(
        { event: 'discovery.registry_joined', listed: listed.length, tried, connected },
        'dialled meshes from the registry',
      )
    }
  }

  /** Whether the dial succeeded; a failure is logged, never thrown. */
  async #dial(addrs: Multiaddr[], options: AbortOptions): Promise<boolean> {
    const signals = [AbortSignal.timeout(this.#init.dialTimeoutMs)]
    if (options.signal !== undefined) signals.push(options.signal)
    try {
      await this.#components.libp2p.dial(addrs, { signal: AbortSignal.any(signals) })
      return true
    } catch (err) {
      if (options.signal?.aborted === true) return false
      this.#log.info(
        { event: 'discovery.dial_failed', addrs: addrs.map(String), err: (err as Error).message },
        'dial failed',
      )
      return false
    }
  }
}
