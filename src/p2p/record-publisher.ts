import type { AbortOptions } from '@libp2p/interface'
// reachable by URL (SPEC §10)
import { pickMeshProfile } from '../api/schemas/mesh-profile.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { canonicalBytes } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import type { MeshLibp2p } from './host.ts'
import {
  createMeshRecord,
  encodeMeshRecord,
  MESH_RECORD_MAX_MULTIADDRS,
  type MeshRecord,
  type MeshRecordContent,
  type MeshRecordKeys,
  meshRecordKey,
} from './mesh-record.ts'

/** What the node puts in its record; setContent() overrides any field. */
export type MeshContentUpdate = Partial<MeshRecordContent>

export interface RecordPublisherComponents {
  libp2p: Pick<MeshLibp2p, 'getConnections' | 'getMultiaddrs' | 'services'>
  /** The mesh key; it signs the record. */
  key: Ed25519KeyPair
  /** The seq and the last record live in its `discovery` sublevel, under `self/v1`. */
  store: MeshStore
  logger: Logger
}

export interface RecordPublisherInit {
  name: string
  version: string
  /** Default `[]`. */
  protocolVersions?: string[]
  /** Live content, read at each publish; see MeshDiscoveryInit.content. */
  content?: (options?: AbortOptions) => MeshContentUpdate | Promise<MeshContentUpdate>
  /** The record is re-signed with a new seq and ts this often even if unchanged. */
  refreshMs: number
  /** After a key rotation: see MeshDiscoveryInit.keys. */
  keys?: () => Promise<{ record: MeshRecordKeys; retired: Ed25519KeyPair[] } | undefined>
}

interface SelfState {
  seq: number
  record?: MeshRecord
}

const SELF_KEY = 'self/v1'

/**
 * Signs this mesh's record and puts it in the DHT under `/mesh/<did>`, with the
 * "moved" records of retired keys. The seq is persisted before a record leaves the
 * node, so it only grows across restarts.
 */
export class RecordPublisher {
  readonly #components: RecordPublisherComponents
  readonly #init: RecordPublisherInit
  readonly #log: Logger
  readonly #sublevel: Sublevel<SelfState>
  readonly #content: MeshRecordContent
  #overrides: MeshContentUpdate = {}
  #seq = 0
  #published: MeshRecord | undefined
  #moved: MeshRecord[] = []
  #reached = false
  /** The routing table's size when the record last reached a peer. */
  #tableAtPut = 0

  constructor(components: RecordPublisherComponents, init: RecordPublisherInit) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.child({ component: 'discovery' })
    this.#sublevel = components.store.sublevel<SelfState>('discovery')
    this.#content = {
      name: init.name,
      version: init.version,
      protocolVersions: init.protocolVersions ?? [],
      multiaddrs: [],
      members: 0,
      bots: 0,
      rooms: 0,
    }
  }

  /** Reads the seq and last record from the store; returns the seq. */
  async load(): Promise<number> {
    const self = await this.#sublevel.get(SELF_KEY)
    this.#seq = self?.seq ?? 0
    this.#published = self?.record
    return this.#seq
  }

  /** The last record this node published (or signed for publishing). */
  get record(): MeshRecord | undefined {
    return this.#published
  }

  setContent(update: MeshContentUpdate): void {
    this.#overrides = { ...this.#overrides, ...update }
  }

  /**
   * Signs a new record when the content changed or the last one is due, and puts it
   * unless the last put already reached a peer and the routing table has not doubled
   * since. Without a connection it only signs.
   *
   * A record put while the node (and the network) knew few peers lands on the closest
   * peers of that small picture; as the network grows, lookups converge on closer peers
   * that never got it (kad-dht does not hand records on), and fail until the record is
   * due again. So the record is put again each time the table has doubled: a handful of
   * puts in a node's life (the table is bounded), found by lookups as the network fills
   * (CI: 4 of 992 lookups failed among 32 meshes that had published with 2 peers known).
   */
  async publishIfDue(options: AbortOptions = {}): Promise<void> {
    const content = await this.#currentContent(options)
    const last = this.#published
    const changed = last === undefined || last.did !== this.#components.key.did || !sameContent(last, content)
    const due = last === undefined || Date.now() - last.ts >= this.#init.refreshMs
    if (changed || due) {
      await this.#signAndStore(content)
    } else if (this.#reached && tableSize(this.#components.libp2p) < 2 * this.#tableAtPut) {
      return
    }
    if (this.#components.libp2p.getConnections().length === 0) return
    await this.#put(options)
  }

  async #currentContent(options: AbortOptions): Promise<MeshRecordContent> {
    const live = (await this.#init.content?.(options)) ?? {}
    const multiaddrs = this.#components.libp2p.getMultiaddrs().map(String)
    const content = { ...this.#content, multiaddrs, ...live, ...this.#overrides }
    // A host on many interfaces must still fit its record.
    return { ...content, multiaddrs: content.multiaddrs.slice(0, MESH_RECORD_MAX_MULTIADDRS) }
  }

  async #signAndStore(content: MeshRecordContent): Promise<void> {
    const seq = this.#seq + 1
    const keys = await this.#init.keys?.()
    const record = createMeshRecord(this.#components.key, content, seq, Date.now(), keys?.record)
    // One seq for the whole mesh, so a moved record outranks whatever its old key published.
    const moved = (keys?.retired ?? []).map((old) =>
      createMeshRecord(old, { ...content, multiaddrs: [] }, seq, record.ts, keys?.record),
    )
    // Persisted before it leaves the node: a crash after the put must not reuse the seq.
    await this.#sublevel.put(SELF_KEY, { seq, record })
    this.#seq = seq
    this.#published = record
    this.#moved = moved
    this.#reached = false
  }

  async #put(options: AbortOptions): Promise<void> {
    const record = this.#published
    if (record === undefined) return
    let reached = 0
    for (const r of [record, ...this.#moved]) {
      for await (const event of this.#components.libp2p.services.dht.put(
        meshRecordKey(r.did),
        encodeMeshRecord(r),
        options,
      )) {
        if (r === record && event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') reached++
      }
    }
    this.#reached = reached > 0
    if (this.#reached) this.#tableAtPut = Math.max(1, tableSize(this.#components.libp2p))
    this.#log.debug(
      { event: 'discovery.published', seq: record.seq, reached, moved: this.#moved.length },
      'mesh record published',
    )
  }
}

/** The DHT's routing table size (kad-dht keeps its table on the service; 0 for another DHT). */
function tableSize(libp2p: Pick<MeshLibp2p, 'services'>): number {
  const size = (libp2p.services.dht as { routingTable?: { size?: unknown } }).routingTable?.size
  return typeof size === 'number' ? size : 0
}

function sameContent(record: MeshRecord, content: MeshRecordContent): boolean {
  const fieldsOf = (c: MeshRecordContent) => {
    const { name, multiaddrs, protocolVersions, version, members, bots, rooms } = c
    // reachable by URL (SPEC §10): the profile counts as content
    return { name, multiaddrs, protocolVersions, version, members, bots, rooms, ...pickMeshProfile(c) }
  }
  const a = canonicalBytes(fieldsOf(record))
  const b = canonicalBytes(fieldsOf(content))
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
}
