import { SignatureMismatchError } from '../errors.ts'
import { type RotationRecord, type VerifiedChain, verifyRotationChain } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'

/**
 * Which keys speak for which mesh in rooms. A room names meshes by their **identity**
 * (the genesis did, identity/rotation.ts): a room's home, a member's `mesh`, a client
 * binding and a seal's `mesh`. A seal may be signed by any key of that identity's
 * history (`seal.key`), a retired key only for entries dated before it was retired.
 *
 * Sources, all verified rotation chains:
 * - this mesh's own history (`own`, read on every call: a rotation shows at once);
 * - the PeerBook (`peers`: each peer's keys and the chain that introduced them),
 *   re-read by `refresh()` (the sync layer calls it on its tick and on unknown keys);
 * - chains learned from shares (a sharing mesh sends its chain, and the home mesh's),
 *   or given with `learn()`; kept in the `rooms` sublevel under `~keys/1/<identity>`.
 *
 * Validation is synchronous, so lookups are answered from memory.
 */

/** One key of a mesh's history. */
export interface MeshKey {
  did: string
  /** For a retired key: the `ts` of the rotation record that retired it (ms since the epoch). */
  retiredAt?: number
}

/** The lookups validation needs (implemented by MeshKeys). */
export interface SealKeys {
  /** The identity a key (or identity) did belongs to; the did itself when nothing is known. */
  identityOf(did: string): string
  /** The keys of an identity, oldest first (the last is current); undefined when unknown. */
  keysOf(identity: string): readonly MeshKey[] | undefined
}

/** This mesh's own keys, as `MeshNode.keys()` gives them. */
export interface OwnKeys {
  identity: string
  /** Every key, oldest first; the last is current. */
  keys: readonly string[]
  rotations: readonly RotationRecord[]
}

/** A peer mesh as the PeerBook files it (a PeerRecord fits). */
export interface PeerKeys {
  did: string
  keys: ReadonlyArray<{ did: string }>
  rotations?: readonly RotationRecord[]
}

export interface MeshKeysInit {
  own: () => OwnKeys
  /** The peers the connection layer knows; default none. */
  peers?: () => Promise<Iterable<PeerKeys>>
  /** Where learned chains are kept; default: in memory only. */
  store?: MeshStore
  logger?: Logger
}

const PREFIX = '~keys/1/'

function keysOfChain(chain: { keys: readonly string[]; records: readonly RotationRecord[] }): MeshKey[] {
  return chain.keys.map((did, i) => {
    const retiredBy = chain.records[i]
    return retiredBy === undefined ? { did } : { did, retiredAt: retiredBy.ts }
  })
}

function isPrefix(shorter: readonly string[], longer: readonly string[]): boolean {
  return shorter.length <= longer.length && shorter.every((k, i) => longer[i] === k)
}

export class MeshKeys implements SealKeys {
  readonly #init: MeshKeysInit
  readonly #sub: Sublevel<RotationRecord[]> | undefined
  readonly #log: Logger
  /** Chains learned from shares or given: identity → records. */
  readonly #learned = new Map<string, RotationRecord[]>()
  /** What the PeerBook and the learned chains say, rebuilt by `refresh`. */
  #byIdentity = new Map<string, MeshKey[]>()
  #owner = new Map<string, string>()
  #peerChains: VerifiedChain[] = []
  #plainPeers: PeerKeys[] = []

  constructor(init: MeshKeysInit) {
    this.#init = init
    this.#sub = init.store?.sublevel<RotationRecord[]>('rooms')
    this.#log = (init.logger ?? silentLogger()).child({ area: 'rooms.keys' })
  }

  /** Reads the learned chains, then the PeerBook. */
  async load(): Promise<void> {
    this.#learned.clear()
    if (this.#sub !== undefined) {
      for await (const [key, records] of this.#sub.iterator({ gte: PREFIX, lt: `${PREFIX}~` })) {
        this.#learned.set(key.slice(PREFIX.length), records)
      }
    }
    await this.refresh()
  }

  /** Re-reads the PeerBook (a peer's rotation shows here once its chain was applied there). */
  async refresh(): Promise<void> {
    const chains: VerifiedChain[] = []
    const plain: PeerKeys[] = []
    for (const peer of (await this.#init.peers?.()) ?? []) {
      if (peer.rotations !== undefined && peer.rotations.length > 0) {
        try {
          chains.push(verifyRotationChain(peer.rotations, { now: Number.MAX_SAFE_INTEGER }))
        } catch (err) {
          this.#log.error(
            { event: 'rooms.keys.bad_peer_chain', peer: peer.did, err },
            'stored chain is invalid',
          )
        }
      } else plain.push(peer)
    }
    this.#peerChains = chains
    this.#plainPeers = plain
    this.#rebuild()
  }

  /**
   * Learns a mesh's rotation chain (verified here). It must agree with what is known of
   * that identity (extend it or be part of it) and name no key another identity holds
   * (MESH_SIGNATURE_MISMATCH otherwise; MESH_BAD_REQUEST … for an invalid chain). Returns whether anything new was learned.
   */
  async learn(rotations: readonly RotationRecord[], options: { now?: number } = {}): Promise<boolean> {
    if (rotations.length === 0) return false
    const chain = verifyRotationChain(rotations, options.now !== undefined ? { now: options.now } : {})
    const own = this.#init.own()
    if (chain.identity === own.identity) {
      if (!isPrefix(chain.keys, own.keys)) this.#conflict(chain, 'disagrees with this mesh’s own history')
      return false
    }
    const known = this.#byIdentity.get(chain.identity)?.map((k) => k.did)
    if (known !== undefined) {
      if (isPrefix(chain.keys, known)) return false
      if (!isPrefix(known, chain.keys))
        this.#conflict(chain, 'disagrees with the key history known for this mesh')
    }
    for (const did of chain.keys) {
      const owner = this.#owner.get(did)
      // A peer first met on a later key is filed under that key: the chain names its identity.
      if (owner !== undefined && owner !== chain.identity && owner !== did)
        this.#conflict(chain, 'names a key of another mesh')
      if (own.keys.includes(did)) this.#conflict(chain, 'names a key of this mesh')
    }
    this.#learned.set(chain.identity, chain.records)
    await this.#sub?.put(PREFIX + chain.identity, chain.records)
    this.#rebuild()
    this.#log.info(
      { event: 'rooms.keys.learned', identity: chain.identity, keys: chain.keys.length },
      'learned a mesh key history',
    )
    return true
  }

  /** The chain known for an identity (own or peer), to pass on to another mesh; empty when none. */
  chainOf(identity: string): RotationRecord[] {
    const own = this.#init.own()
    if (identity === own.identity) return [...own.rotations]
    const learned = this.#learned.get(identity)
    const fromPeers = this.#peerChains.find((c) => c.identity === identity)?.records ?? []
    return learned !== undefined && learned.length > fromPeers.length ? [...learned] : [...fromPeers]
  }

  identityOf(did: string): string {
    const own = this.#init.own()
    if (own.keys.includes(did)) return own.identity
    return this.#owner.get(did) ?? did
  }

  keysOf(identity: string): readonly MeshKey[] | undefined {
    const own = this.#init.own()
    if (identity === own.identity) return keysOfChain({ keys: own.keys, records: own.rotations })
    return this.#byIdentity.get(identity)
  }

  /** Every did (identity and keys) of this mesh. */
  ownDids(): readonly string[] {
    return this.#init.own().keys
  }

  #conflict(chain: VerifiedChain, why: string): never {
    throw new SignatureMismatchError(`the rotation chain ${why}`, { identity: chain.identity })
  }

  /** Chains first (the longest consistent one per identity), then peers known by one key only. */
  #rebuild(): void {
    const best = new Map<string, VerifiedChain>()
    const candidates: VerifiedChain[] = [...this.#peerChains]
    for (const [identity, records] of this.#learned) {
      try {
        candidates.push(verifyRotationChain(records, { identity, now: Number.MAX_SAFE_INTEGER }))
      } catch (err) {
        this.#log.error({ event: 'rooms.keys.bad_learned_chain', identity, err }, 'stored chain is invalid')
      }
    }
    for (const chain of candidates) {
      const held = best.get(chain.identity)
      if (held === undefined) best.set(chain.identity, chain)
      else if (isPrefix(held.keys, chain.keys)) best.set(chain.identity, chain)
      else if (!isPrefix(chain.keys, held.keys))
        this.#log.warn(
          { event: 'rooms.keys.fork', identity: chain.identity },
          'two key histories disagree; keeping the first',
        )
    }
    const byIdentity = new Map<string, MeshKey[]>()
    const owner = new Map<string, string>()
    for (const chain of best.values()) {
      byIdentity.set(chain.identity, keysOfChain(chain))
      for (const did of chain.keys) if (!owner.has(did)) owner.set(did, chain.identity)
    }
    for (const peer of this.#plainPeers) {
      if (owner.has(peer.did)) continue
      byIdentity.set(
        peer.did,
        peer.keys.map((k) => ({ did: k.did })),
      )
      for (const k of peer.keys) if (!owner.has(k.did)) owner.set(k.did, peer.did)
    }
    this.#byIdentity = byIdentity
    this.#owner = owner
  }
}
