import { join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { admitPeer, PeerRefusals, ProtocolHandler, perMinute } from '../connections/peer-request.ts'
import { ForbiddenError, MeshError } from '../errors.ts'
import {
  BlobStore,
  FILES_PROTOCOL,
  type FileRef,
  type FileRooms,
  FileServer,
  FileService,
} from '../files/index.ts'
import { peerIdFromDid } from '../identity/index.ts'
import { addDialAddresses } from '../p2p/index.ts'
import { canWrite, type Room, type RoomManager, type RoomSync } from '../rooms/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

export interface FilesWiring extends NodeWiring {
  reputation: ReputationFeed
}

/**
 * Files in rooms (issue 18, SPEC §13): the blob store under `<data dir>/blobs`, the
 * service the HTTP routes use, and `/mesh/files/1.0.0` (a handler that follows the libp2p
 * host across a key rotation, node/network.ts).
 */
export async function startFiles({ parts, init, logger, reputation }: FilesWiring): Promise<void> {
  const log = logger.child({ area: 'files' })
  const store = new BlobStore({
    dir: join(init.dataDir, 'blobs'),
    ...(init.files?.maxFileBytes !== undefined ? { maxFileBytes: init.files.maxFileBytes } : {}),
    ...(init.files?.cacheBytes !== undefined ? { cacheBytes: init.files.cacheBytes } : {}),
  })
  await store.start()
  // files18c (issue 18): fetched files still on their way to disk are stored before the node stops
  parts.onStop(() => store.settled())
  const refs = new RoomFileIndex(
    () => parts.get('rooms'),
    () => parts.find('roomSync'),
  )
  const service = new FileService({
    store,
    rooms: refs,
    logger: log,
    dial: (mesh, signal) => dialFiles(parts, mesh, signal),
  })
  parts.set('files', service)
  const limiter = perMinute(init.files?.requestsPerMinute ?? 1200)
  const refusals = new PeerRefusals({
    kind: 'files.request',
    rejected: parts.get('rejected'),
    onPeerRefused: (mesh, reason) => reputation.peer({ mesh, outcome: 'refused', reason }),
    logger: log,
  })
  const server = new FileServer({
    store,
    admit: (connection) =>
      admitPeer(connection, () => parts.get('connections').peers(), limiter, parts.get('policy')),
    servesTo: (mesh, room, cid) => refs.servesTo(mesh, room, cid),
    onRefused: (peer, err) => void refusals.record(peer, err),
    ...(init.files?.serveBytesPerSecond !== undefined
      ? { bytesPerSecond: init.files.serveBytesPerSecond }
      : {}),
    logger: log,
  })
  parts.set('fileServer', server)
  await parts.add(
    'filesProtocol',
    new ProtocolHandler({
      protocol: FILES_PROTOCOL,
      libp2p: () => parts.get('libp2p'),
      maxInboundStreams: 8,
      serve: (stream, connection) => server.serve(stream, connection),
    }),
  )
}

/** A `/mesh/files/1.0.0` stream to a connected peer mesh (its current key, the addresses known). */
async function dialFiles(parts: FilesWiring['parts'], mesh: string, signal: AbortSignal): Promise<Stream> {
  const peer = (await parts.get('connections').peers()).find((p) => p.did === mesh || p.keys.includes(mesh))
  if (peer === undefined || (peer.state !== 'accepted' && peer.state !== 'degraded'))
    throw new MeshError('MESH_NOT_CONNECTED', 'no accepted connection with this mesh', { mesh })
  const libp2p = parts.get('libp2p')
  const peerId = peerIdFromDid(peer.keys.at(-1) ?? peer.did)
  if (libp2p.getConnections(peerId).length === 0)
    await addDialAddresses(libp2p.peerStore, peerId, peer.multiaddrs)
  try {
    return await libp2p.dialProtocol(peerId, FILES_PROTOCOL, { signal, runOnLimitedConnection: true })
  } catch (err) {
    const unsupported = (err as Error)?.name === 'UnsupportedProtocolError'
    throw new MeshError(
      unsupported ? 'MESH_PROTOCOL_VERSION' : 'MESH_UNAVAILABLE',
      unsupported ? 'the peer speaks no version of the files protocol in common' : String(err),
      { mesh },
    )
  }
}

/**
 * Which rooms name which files: each room's messages scanned once per change of its
 * message count (redacted messages name nothing).
 */
class RoomFileIndex implements FileRooms {
  readonly #rooms: () => RoomManager
  readonly #sync: () => RoomSync | undefined
  readonly #byRoom = new Map<string, { count: number; redactions: number; files: Map<string, FileSource> }>()

  constructor(rooms: () => RoomManager, sync: () => RoomSync | undefined) {
    this.#rooms = rooms
    this.#sync = sync
  }

  async assertMayPost(did: string, room: string): Promise<void> {
    const { member } = await this.#rooms().roomFor(room, did)
    if (!canWrite(member, this.#rooms().ownMesh))
      throw new ForbiddenError('you may only read this room', { room })
  }

  async find(did: string, cid: string): Promise<Awaited<ReturnType<FileRooms['find']>>> {
    const rooms = this.#rooms()
    let referenced = false
    for (const record of await rooms.list()) {
      const room = await rooms.load(record.id)
      const source = this.#files(room).get(cid)
      if (source === undefined) continue
      referenced = true
      try {
        await rooms.roomFor(record.id, did)
      } catch {
        continue
      }
      const own = rooms.ownMesh
      const shared = (this.#sync()?.shares(record.id) ?? []).filter((s) => s.shared).map((s) => s.peer)
      const sources = [...new Set([source.authorMesh, record.homeMesh, ...shared])].filter((m) => m !== own)
      return { found: { room: record.id, file: source.file, sources }, referenced }
    }
    return { referenced }
  }

  /** Whether `room` is shared with `mesh` now (accepted, not ended) and names `cid`. */
  async servesTo(mesh: string, roomId: string, cid: string): Promise<boolean> {
    const shared = (this.#sync()?.shares(roomId) ?? []).some((s) => s.peer === mesh && s.shared)
    if (!shared) return false
    const room = await this.#rooms().load(roomId)
    return this.#files(room).has(cid)
  }

  #files(room: Room): Map<string, FileSource> {
    const messages = room.doc.getMap('messages')
    const redactions = room.doc.getMap('redactions').size
    const known = this.#byRoom.get(room.id)
    if (known !== undefined && known.count === messages.size && known.redactions === redactions)
      return known.files
    const files = new Map<string, FileSource>()
    for (const [id, value] of messages) {
      const entry = value as { attachments?: FileRef[]; authorMesh: string }
      if (entry.attachments === undefined || room.isRedacted(id)) continue
      for (const file of entry.attachments)
        if (!files.has(file.cid)) files.set(file.cid, { file, authorMesh: entry.authorMesh })
    }
    this.#byRoom.set(room.id, { count: messages.size, redactions, files })
    return files
  }
}

interface FileSource {
  file: FileRef
  authorMesh: string
}
