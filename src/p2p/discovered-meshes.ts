import type { AbortOptions } from '@libp2p/interface'
// reachable by URL (SPEC §10)
import { pickMeshProfile } from '../api/schemas/mesh-profile.ts'
import type { MeshProfile } from '../api/types.ts'
import type { Logger } from '../log.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import { currentDidOf, type MeshRecord } from './mesh-record.ts'

/**
 * How fresh a discovered mesh is: `online` within 3 discovery intervals (or connected),
 * `idle` within 10, `offline` after. The same words a registry uses for its list.
 */
export type MeshStatus = 'online' | 'idle' | 'offline'

/**
 * One discovered mesh: an item of `GET /api/meshes/public`, the shape a registry lists
 * too (SPEC §3): the public fields of its newest record, with how fresh it is.
 */
export type DiscoveredMesh = Pick<
  MeshRecord,
  'did' | 'name' | 'peerId' | 'multiaddrs' | 'members' | 'bots' | 'rooms' | 'version' | 'protocolVersions'
> &
  MeshProfile & {
    status: MeshStatus
    /** ISO 8601 time of the newest record held. */
    lastHeartbeat: string
    /** ISO 8601 time this node first found the mesh. */
    firstSeen?: string
  }

export interface DiscoveredMeshBookComponents {
  /** The book lives in the store's `discovery` sublevel, under `mesh/v1/<did>`. */
  store: MeshStore
  logger: Logger
  /** Whether a connection to this PeerId is open: a connected mesh is online and never forgotten. */
  isConnected(peerId: string): boolean
  /** Default Date.now. */
  now?: () => number
}

export interface DiscoveredMeshBookInit {
  /** This mesh's did: never listed, nor a record whose rotation chain names it. */
  self: string
  /** The discovery interval, the unit of `status`. */
  intervalMs: number
  /**
   * A mesh whose newest record is older than this, and that is not connected, is
   * forgotten (dropped from the list; found again if it comes back).
   */
  forgetAfterMs: number
}

interface DiscoveryEntry {
  record: MeshRecord
  firstSeen: number
  updatedAt: number
}

const MESH_PREFIX = 'mesh/v1/'

/**
 * What this node knows of other meshes: the newest valid record of each, when it was
 * first found and last checked. Writes go through one queue, so two finds of the same
 * mesh never race and forgetting never deletes a record that arrived meanwhile.
 */
export class DiscoveredMeshBook {
  readonly #init: DiscoveredMeshBookInit
  readonly #isConnected: (peerId: string) => boolean
  readonly #now: () => number
  readonly #sublevel: Sublevel<DiscoveryEntry>
  readonly #log: Logger
  /** When each mesh's record was last fetched (found or not), in memory only. */
  readonly #checkedAt = new Map<string, number>()
  #queue: Promise<unknown> = Promise.resolve()
  #forgottenAt = 0

  constructor(components: DiscoveredMeshBookComponents, init: DiscoveredMeshBookInit) {
    this.#init = init
    this.#isConnected = components.isConnected
    this.#log = components.logger.child({ component: 'discovery' })
    this.#sublevel = components.store.sublevel<DiscoveryEntry>('discovery')
    this.#now = components.now ?? Date.now
  }

  /** Every mesh in the book, newest record first. */
  async list(options: AbortOptions = {}): Promise<DiscoveredMesh[]> {
    options.signal?.throwIfAborted()
    const now = this.#now()
    return (await this.#entries())
      .map(({ record, firstSeen }) => ({
        did: record.did,
        name: record.name,
        peerId: record.peerId,
        multiaddrs: record.multiaddrs,
        status: this.#status(record, now),
        members: record.members,
        bots: record.bots,
        rooms: record.rooms,
        version: record.version,
        protocolVersions: record.protocolVersions,
        lastHeartbeat: new Date(record.ts).toISOString(),
        firstSeen: new Date(firstSeen).toISOString(),
        ...pickMeshProfile(record), // reachable by URL (SPEC §10)
      }))
      .sort((a, b) => b.lastHeartbeat.localeCompare(a.lastHeartbeat) || a.did.localeCompare(b.did))
  }

  /** The record held for `did`, if any. */
  async get(did: string, options: AbortOptions = {}): Promise<MeshRecord | undefined> {
    options.signal?.throwIfAborted()
    return (await this.#sublevel.get(MESH_PREFIX + did))?.record
  }

  /** When `did`'s record was last fetched; undefined if never (since start). */
  checkedAt(did: string): number | undefined {
    return this.#checkedAt.get(did)
  }

  markChecked(did: string): void {
    this.#checkedAt.set(did, this.#now())
  }

  /**
   * Stores `record` if it is newer than the one held. A mesh is listed once, under its
   * current key: a record with a rotation chain drops the entries of the keys the chain
   * retired, and a moved record is not listed.
   */
  async ingest(record: MeshRecord): Promise<void> {
    const self = this.#init.self
    if (record.did === self) return
    if (record.rotations?.some((r) => r.previous === self || r.next === self)) return
    await this.#enqueue(async () => {
      const key = MESH_PREFIX + record.did
      const held = await this.#sublevel.get(key)
      if (held !== undefined && held.record.seq >= record.seq) return
      // a stale copy some DHT node still holds does not bring back a forgotten mesh
      if (this.#now() - record.ts > this.#init.forgetAfterMs) return
      if (record.rotations !== undefined) {
        const current = currentDidOf(record)
        const retired = record.rotations.map((r) => r.previous).filter((did) => did !== current)
        if (current !== record.did) retired.push(record.did)
        for (const did of retired) await this.#sublevel.del(MESH_PREFIX + did)
        if (current !== record.did) {
          this.#log.debug(
            { event: 'discovery.mesh_moved', did: record.did, current },
            'mesh moved to a new key',
          )
          return
        }
      }
      const now = this.#now()
      await this.#sublevel.put(key, { record, firstSeen: held?.firstSeen ?? now, updatedAt: now })
      const fields = { did: record.did, name: record.name, seq: record.seq }
      if (held === undefined) this.#log.info({ event: 'discovery.mesh_found', ...fields }, 'mesh found')
      else this.#log.debug({ event: 'discovery.mesh_updated', ...fields }, 'mesh updated')
    })
  }

  /**
   * Drops meshes not heard of for forgetAfterMs (at most every tenth of that, and every
   * hour at least): a list of meshes long gone is of no use to anyone browsing it.
   */
  async forgetStale(): Promise<void> {
    const now = this.#now()
    const every = Math.min(this.#init.forgetAfterMs / 10, 60 * 60 * 1000)
    if (now - this.#forgottenAt < every) return
    this.#forgottenAt = now
    await this.idle()
    for (const { record } of await this.#entries()) {
      if (now - record.ts <= this.#init.forgetAfterMs || this.#isConnected(record.peerId)) continue
      // through the queue, so a fresh record arriving meanwhile is not deleted
      await this.#enqueue(async () => {
        const held = await this.#sublevel.get(MESH_PREFIX + record.did)
        if (held === undefined || held.record.seq !== record.seq) return
        await this.#sublevel.del(MESH_PREFIX + record.did)
        this.#checkedAt.delete(record.did)
        this.#log.info(
          { event: 'discovery.mesh_forgotten', did: record.did, name: record.name, lastSeen: record.ts },
          'mesh forgotten',
        )
      })
    }
  }

  /** Resolves when every write queued so far is done. */
  async idle(): Promise<void> {
    await this.#queue
  }

  async #enqueue(write: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(write)
    this.#queue = next.catch(() => {})
    await next
  }

  async #entries(): Promise<DiscoveryEntry[]> {
    return this.#sublevel.values({ gte: MESH_PREFIX, lt: `${MESH_PREFIX}\xff` }).all()
  }

  #status(record: MeshRecord, now: number): MeshStatus {
    const age = now - record.ts
    if (age <= 3 * this.#init.intervalMs || this.#isConnected(record.peerId)) return 'online'
    if (age <= 10 * this.#init.intervalMs) return 'idle'
    return 'offline'
  }
}
