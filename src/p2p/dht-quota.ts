import { TooLargeError } from '../errors.ts'

/** The limits of one key space (see KeyQuota). */
export interface QuotaLimits {
  /** Keys held at most. */
  max: number
  /** Bytes of values held at most; default no limit. */
  maxBytes?: number
  /** Keys one holder (other than this node) holds at most. */
  perHolder: number
  /** Keys one group holds at most; `max` for groups not listed. */
  perGroup?: Record<string, number>
  /** The default for groups not in `perGroup`; default `max`. */
  perOtherGroup?: number
}

/** The holder of this node's own writes. */
export const SELF = ''

export interface QuotaEntry {
  holder: string
  group: string
  /** The peer the key is about, when known. */
  owner: string | undefined
  /** Milliseconds since the epoch after which the key is dropped. */
  expiresAt: number
  /** The value's size. */
  bytes: number
}

/**
 * Who pays for the keys of one DHT key space (records, or provider records), and which
 * key goes when the space is full.
 *
 * Every key is charged to a *holder*: the peer that wrote it (a provider record's
 * provider, a record's PUT_VALUE sender; SELF for this node's own writes). A holder may
 * hold `perHolder` keys; a group (a record namespace, a provider record's CID) `perGroup`;
 * the space `max`. A new key beyond a limit takes the place of another, chosen so that a
 * flood pays for itself and never pushes out the honest:
 *
 * - beyond `perHolder`: the holder's own least recently used key;
 * - beyond `perGroup`: the group's least recently used key;
 * - beyond `max` keys or `maxBytes`: a key of the holder holding the most (least
 *   recently used holder and key first), never of a holder holding fewer keys than the
 *   newcomer does; this node's own keys only for its own writes.
 *
 * A key is *kept* — never chosen — when its owner (the peer it is about: a provider
 * record's provider, a mesh record's signer) is this node, or when it is the owner's own
 * single key and `isKept(owner)` says so (the mesh node: the owner is connected). When
 * only kept keys could go, the new key is refused (MESH_TOO_LARGE). "Used" means written
 * by its owner (`rewrite`): a mesh republishes its record and reprovides the directory
 * every minute or sooner, junk nobody renews goes first. Reads do not count: a remote
 * peer could read its own junk to keep it.
 */
export class KeyQuota {
  readonly #limits: QuotaLimits
  readonly #self: () => string | undefined
  readonly #isKept: (owner: string) => boolean
  readonly #entries = new Map<string, QuotaEntry>()
  /** Keys per holder, least recently used first. */
  readonly #byHolder = new Map<string, Set<string>>()
  /**
   * Keys per group, least recently used first; a group of one key is that key (a flood
   * of random CIDs makes one group per key, and a Set costs more than the key).
   */
  readonly #byGroup = new Map<string, string | Set<string>>()
  /** Holders by how many keys they hold, least recently used first. */
  readonly #buckets = new Map<number, Set<string>>()
  #most = 0
  #bytes = 0

  constructor(limits: QuotaLimits, self: () => string | undefined, isKept: (owner: string) => boolean) {
    this.#limits = limits
    this.#self = self
    this.#isKept = isKept
  }

  get size(): number {
    return this.#entries.size
  }

  /** Bytes of values held. */
  get bytes(): number {
    return this.#bytes
  }

  get(name: string): QuotaEntry | undefined {
    return this.#entries.get(name)
  }

  /** Keys `holder` holds. */
  heldBy(holder: string): number {
    return this.#byHolder.get(holder)?.size ?? 0
  }

  /**
   * The keys to delete so that key `name` fits (new, or written again with a value of
   * `entry.bytes`), in order; throws MESH_TOO_LARGE when only kept keys could make room.
   * Changes nothing: the caller deletes, then `add`s or `rewrite`s.
   */
  makeRoom(name: string, entry: Pick<QuotaEntry, 'holder' | 'group' | 'bytes'>): string[] {
    const victims: string[] = []
    const taken = (key: string) => key === name || victims.includes(key)
    const held = this.#entries.get(name)
    const { holder, group } = held ?? entry
    const limits = this.#limits
    const freed = () => victims.reduce((sum, v) => sum + (this.#entries.get(v)?.bytes ?? 0), 0)
    const stillHeld = () =>
      this.heldBy(holder) - victims.filter((v) => this.#entries.get(v)?.holder === holder).length
    const over = () =>
      this.#bytes - freed() + entry.bytes - (held?.bytes ?? 0) - (limits.maxBytes ?? Infinity)
    /** Takes `victim`, or refuses with `message` when only kept keys were left to take. */
    const evict = (victim: string | undefined, message: string, limit: number): void => {
      if (victim === undefined) throw this.#full(message, limit)
      victims.push(victim)
    }
    const fitBytes = (): string[] => {
      while (over() > 0) {
        const victim = this.#fromLargest(holder, stillHeld(), taken)
        evict(victim, 'this node holds its limit of DHT bytes', limits.maxBytes ?? 0)
      }
      return victims
    }
    if (held !== undefined) return fitBytes()
    if (!this.#isSelf(holder) && this.heldBy(holder) >= limits.perHolder) {
      const victim = this.#oldest(this.#byHolder.get(holder), taken)
      evict(victim, 'this peer holds its limit of DHT keys here', limits.perHolder)
    }
    const groupLimit = limits.perGroup?.[group] ?? limits.perOtherGroup ?? limits.max
    const groupKeys = this.#byGroup.get(group)
    const groupSize = groupKeys === undefined ? 0 : typeof groupKeys === 'string' ? 1 : groupKeys.size
    const inGroup = groupSize - victims.filter((v) => this.#entries.get(v)?.group === group).length
    if (inGroup >= groupLimit) {
      const victim = this.#oldest(typeof groupKeys === 'string' ? [groupKeys] : groupKeys, taken)
      evict(victim, `the DHT key group ${group} is full`, groupLimit)
    }
    if (this.#entries.size - victims.length >= limits.max) {
      evict(
        this.#fromLargest(holder, stillHeld(), taken),
        'this node holds its limit of DHT keys',
        limits.max,
      )
    }
    return fitBytes()
  }

  /** Charges new key `name`; `makeRoom` made room for it. */
  add(name: string, entry: QuotaEntry): void {
    this.#entries.set(name, entry)
    this.#bytes += entry.bytes
    this.#charge(entry.holder, name)
    const groupKeys = this.#byGroup.get(entry.group)
    if (groupKeys === undefined) this.#byGroup.set(entry.group, name)
    else if (typeof groupKeys === 'string') this.#byGroup.set(entry.group, new Set([groupKeys, name]))
    else groupKeys.add(name)
  }

  /**
   * A held key written again: it expires later, and is used now if its owner (or this
   * node) wrote it. A mesh's own write
   * makes the key its own: a relayer that stored it first stops paying for it (and an
   * attacker that re-sends an honest record cannot take it over, being no owner).
   */
  rewrite(name: string, holder: string, expiresAt: number, bytes: number): void {
    const entry = this.#entries.get(name)
    if (entry === undefined) return
    entry.expiresAt = Math.max(entry.expiresAt, expiresAt)
    this.#bytes += bytes - entry.bytes
    entry.bytes = bytes
    if (holder !== entry.holder && holder === entry.owner) {
      this.#discharge(entry.holder, name)
      entry.holder = holder
      this.#charge(holder, name)
    }
    if (holder === entry.owner || this.#isSelf(holder)) this.touch(name)
  }

  /** Marks `name` used now. */
  touch(name: string): void {
    const entry = this.#entries.get(name)
    if (entry === undefined) return
    moveToEnd(this.#byHolder.get(entry.holder), name)
    const groupKeys = this.#byGroup.get(entry.group)
    if (typeof groupKeys !== 'string') moveToEnd(groupKeys, name)
    moveToEnd(this.#buckets.get(this.heldBy(entry.holder)), entry.holder)
  }

  remove(name: string): void {
    const entry = this.#entries.get(name)
    if (entry === undefined) return
    this.#entries.delete(name)
    this.#bytes -= entry.bytes
    this.#discharge(entry.holder, name)
    const groupKeys = this.#byGroup.get(entry.group)
    if (typeof groupKeys === 'string' || groupKeys?.size === 1) this.#byGroup.delete(entry.group)
    else groupKeys?.delete(name)
  }

  /** Keys whose time is up at `now`. */
  expired(now: number): string[] {
    const out: string[] = []
    for (const [name, entry] of this.#entries) if (entry.expiresAt <= now) out.push(name)
    return out
  }

  #charge(holder: string, name: string): void {
    const keys = setOf(this.#byHolder, holder)
    const before = keys.size
    keys.add(name)
    this.#rebucket(holder, before, keys.size)
  }

  #discharge(holder: string, name: string): void {
    const keys = this.#byHolder.get(holder)
    if (keys === undefined || !keys.delete(name)) return
    this.#rebucket(holder, keys.size + 1, keys.size)
    if (keys.size === 0) this.#byHolder.delete(holder)
  }

  #rebucket(holder: string, from: number, to: number): void {
    if (from === to) return
    const old = this.#buckets.get(from)
    old?.delete(holder)
    if (old?.size === 0) this.#buckets.delete(from)
    if (to > 0) setOf(this.#buckets, to).add(holder)
    if (to > this.#most) this.#most = to
    while (this.#most > 0 && !this.#buckets.has(this.#most)) this.#most--
  }

  /**
   * A key of the holder holding the most (the newcomer itself first on a tie), down to
   * holders holding as many as the newcomer: never one of a smaller holder.
   */
  #fromLargest(newcomer: string, newcomerHolds: number, taken: (key: string) => boolean): string | undefined {
    for (let count = this.#most; count >= Math.max(newcomerHolds, 1); count--) {
      const holders = this.#buckets.get(count)
      if (holders === undefined) continue
      const ordered = holders.has(newcomer) ? [newcomer, ...holders] : holders
      for (const holder of ordered) {
        if (this.#isSelf(holder) && !this.#isSelf(newcomer)) continue
        const victim = this.#oldest(this.#byHolder.get(holder), taken)
        if (victim !== undefined) return victim
      }
    }
    return undefined
  }

  /** The least recently used key of `keys` that may go. */
  #oldest(keys: Iterable<string> | undefined, taken: (key: string) => boolean): string | undefined {
    if (keys === undefined) return undefined
    for (const key of keys) {
      if (taken(key) || this.#kept(key)) continue
      return key
    }
    return undefined
  }

  #isSelf(holder: string): boolean {
    return holder === SELF || holder === this.#self()
  }

  #kept(name: string): boolean {
    const entry = this.#entries.get(name)
    if (entry?.owner === undefined) return false
    if (entry.owner === this.#self()) return true
    return entry.holder === entry.owner && this.heldBy(entry.holder) === 1 && this.#isKept(entry.owner)
  }

  #full(message: string, limit: number): Error {
    return new TooLargeError(message, { limit })
  }
}

function setOf<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let set = map.get(key)
  if (set === undefined) {
    set = new Set()
    map.set(key, set)
  }
  return set
}

function moveToEnd<V>(set: Set<V> | undefined, value: V): void {
  if (set?.delete(value)) set.add(value)
}
