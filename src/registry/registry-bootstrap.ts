import type { AbortOptions } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { type Logger, silentLogger } from '../log.ts'

export interface RegistryBootstrapInit {
  /** The registry, e.g. `http://127.0.0.1:7800`. */
  registryUrl: string
  /**
   * Registry entries returned at most per join, oldest first: the node passes over a
   * dead entry for the next until enough answered; default 64.
   */
  maxAttempts?: number
  /** Per registry request; default 5 000. */
  timeoutMs?: number
  logger?: Logger
}

export interface RegistryTargetsOptions extends AbortOptions {
  /** The asking mesh's did, left out of the answer. */
  self: string
}

/**
 * A bootstrap source for discovery (structurally p2p's `BootstrapSource`; the network
 * part never imports the registry, the composition root hands this in).
 */
export interface RegistryBootstrap {
  /**
   * Up to `maxAttempts` online meshes from the registry's public list, each as its
   * multiaddrs; never rejects (an unreachable registry is logged, and what was read so
   * far, or nothing, returned).
   */
  targets(options: RegistryTargetsOptions): Promise<Multiaddr[][]>
}

const MAX_REGISTRY_PAGES = 20

/**
 * The registry pull: reads `GET /api/meshes/public?status=online&sort=age` page by
 * page. Oldest first (the registry's `sort=age`): a flood of fresh fakes cannot push
 * the long-lived meshes out of reach, whatever names it picks.
 */
export function createRegistryBootstrap(init: RegistryBootstrapInit): RegistryBootstrap {
  const url = init.registryUrl
  const wanted = init.maxAttempts ?? 64
  const timeoutMs = init.timeoutMs ?? 5_000
  const log = (init.logger ?? silentLogger()).child({ area: 'registry' })
  return {
    async targets(options: RegistryTargetsOptions): Promise<Multiaddr[][]> {
      const targets: Multiaddr[][] = []
      let cursor: string | undefined
      // A registry older than `sort` refuses it (400); it is asked again by name, as before.
      let byAge = true
      try {
        for (let page = 0; page < MAX_REGISTRY_PAGES && targets.length < wanted; page++) {
          const query = new URLSearchParams({ status: 'online', limit: '100' })
          if (byAge) query.set('sort', 'age')
          if (cursor !== undefined) query.set('cursor', cursor)
          const signals = [AbortSignal.timeout(timeoutMs)]
          if (options.signal !== undefined) signals.push(options.signal)
          const res = await fetch(`${url.replace(/\/+$/, '')}/api/meshes/public?${query}`, {
            signal: AbortSignal.any(signals),
          })
          if (res.status === 400 && byAge && page === 0) {
            await res.body?.cancel()
            byAge = false
            page--
            continue
          }
          if (!res.ok) throw new Error(`registry answered ${res.status}`)
          const body = (await res.json()) as { meshes?: unknown; nextCursor?: unknown }
          if (!Array.isArray(body.meshes)) throw new Error('registry answer has no meshes list')
          for (const item of body.meshes) {
            const addrs = registryAddrs(item)
            if (addrs !== undefined && addrs.did !== options.self && addrs.multiaddrs.length > 0) {
              targets.push(addrs.multiaddrs)
            }
          }
          if (typeof body.nextCursor !== 'string' || body.nextCursor === '') break
          cursor = body.nextCursor
        }
      } catch (err) {
        if (options.signal?.aborted === true) return []
        log.warn(
          { event: 'discovery.registry_unreachable', url, err: (err as Error).message },
          'registry unreachable',
        )
      }
      // A handful of peers is enough to join the DHT; the directory finds the rest.
      return targets.slice(0, wanted)
    },
  }
}

/** The multiaddrs of one registry list item (with `/p2p/<peerId>` added when missing). */
function registryAddrs(item: unknown): { did: string; multiaddrs: Multiaddr[] } | undefined {
  if (typeof item !== 'object' || item === null) return undefined
  const { did, peerId, multiaddrs } = item as { did?: unknown; peerId?: unknown; multiaddrs?: unknown }
  if (typeof did !== 'string' || !Array.isArray(multiaddrs)) return undefined
  const out: Multiaddr[] = []
  for (const addr of multiaddrs.slice(0, 16)) {
    if (typeof addr !== 'string') continue
    try {
      let ma = multiaddr(addr)
      if (ma.getComponents().every((c) => c.name !== 'p2p') && typeof peerId === 'string') {
        ma = ma.encapsulate(`/p2p/${peerId}`)
      }
      out.push(ma)
    } catch {
      // A registry may list what this node cannot parse; the other addresses still count.
    }
  }
  return { did, multiaddrs: out }
}
