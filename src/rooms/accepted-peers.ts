import { NotConnectedError } from '../errors.ts'
import type { MeshKeys } from './mesh-keys.ts'

/** A peer mesh with an accepted connection, as the sync layer needs to know it. */
export interface AcceptedPeer {
  /** The peer as the connection layer files it (its identity, or the key it was first met with). */
  did: string
  /** Its keys, oldest first (the last is current); default `[did]`. */
  keys?: string[]
  name: string | null
  architectDid: string | null
  multiaddrs: string[]
}

export interface AcceptedPeersComponents {
  /** This mesh's identity: how rooms and peers name it. */
  identity: () => string
  keys: () => MeshKeys
  /** Peers with an accepted connection now, by did (mapped here to identities). */
  acceptedPeers: () => Promise<Map<string, AcceptedPeer>>
  stats: { peerReloads: number }
  now: () => number
  /** A key a reload found not accepted is refused without another reload for this long. */
  refreshIntervalMs: number
}

const MAX_STRANGERS = 10_000

/**
 * The peers with an accepted connection, by identity (a peer's rotated keys and a
 * learned chain map to it), and which key each holds now.
 */
export class AcceptedPeers {
  readonly #c: AcceptedPeersComponents
  #accepted = new Map<string, AcceptedPeer>()
  #refreshing: Promise<void> | undefined
  /** Keys a reload found not accepted, until when they are refused without another. */
  readonly #strangers = new Map<string, number>()
  /** Reloads of the accepted peers started and applied: an older one never overwrites a newer. */
  #started = 0
  #applied = 0

  constructor(components: AcceptedPeersComponents) {
    this.#c = components
  }

  get(identity: string): AcceptedPeer | undefined {
    return this.#accepted.get(identity)
  }

  has(identity: string): boolean {
    return this.#accepted.has(identity)
  }

  /** The peer's identity became known (its chain was learned): it is filed under it too. */
  alias(identity: string, peer: AcceptedPeer): void {
    this.#accepted.set(identity, { ...peer, did: identity })
  }

  /** Whether `did` names this mesh (its identity or one of its keys). */
  isOwn(did: string): boolean {
    return did === this.#c.identity() || this.#c.keys().ownDids().includes(did)
  }

  /** The key a peer mesh holds now, as far as known. */
  currentKey(identity: string): string {
    const known =
      this.#c
        .keys()
        .keysOf(identity)
        ?.map((k) => k.did) ?? []
    const accepted = this.#accepted.get(identity)?.keys ?? []
    return (accepted.length > known.length ? accepted : known).at(-1) ?? identity
  }

  /** Every did known for a peer mesh: its identity and keys. */
  didsOf(identity: string): string[] {
    const keys =
      this.#c
        .keys()
        .keysOf(identity)
        ?.map((k) => k.did) ?? []
    return [...new Set([identity, ...keys, ...(this.#accepted.get(identity)?.keys ?? [])])]
  }

  /** Accepted peers by identity, reloaded. */
  async load(): Promise<Map<string, AcceptedPeer>> {
    const started = ++this.#started
    const out = new Map<string, AcceptedPeer>()
    const keys = this.#c.keys()
    for (const p of (await this.#c.acceptedPeers()).values()) {
      const identity = keys.identityOf(p.did)
      out.set(identity, { ...p, did: identity, keys: p.keys ?? [p.did] })
    }
    // Reloads overlap (the periodic check, streams, connects): the latest started wins.
    if (started > this.#applied) {
      this.#applied = started
      this.#accepted = out
    }
    return out
  }

  /** MESH_NOT_CONNECTED unless `peer` has an accepted connection now (reloaded). */
  async require(peer: string): Promise<AcceptedPeer> {
    const accepted = (await this.load()).get(peer)
    if (accepted === undefined)
      throw new NotConnectedError('there is no accepted connection with that mesh', { mesh: peer })
    return accepted
  }

  /** The periodic reload of key histories and accepted peers (and the one on demand). */
  async reload(): Promise<void> {
    this.#c.stats.peerReloads++
    await this.#c.keys().refresh()
    await this.load()
  }

  /** A reload on demand: the one under way if there is one (its answer serves every waiter). */
  reloadShared(): Promise<void> {
    this.#refreshing ??= this.reload().finally(() => {
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  /** Whether a reload found `key` not accepted less than `refreshIntervalMs` ago. */
  strangerRecently(key: string): boolean {
    const until = this.#strangers.get(key)
    if (until === undefined) return false
    if (until > this.#c.now()) return true
    this.#strangers.delete(key)
    return false
  }

  markStranger(key: string): void {
    if (this.#strangers.size >= MAX_STRANGERS) this.#strangers.clear()
    this.#strangers.set(key, this.#c.now() + this.#c.refreshIntervalMs)
  }
}
