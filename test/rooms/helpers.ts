import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import * as Y from 'yjs'
import { type SessionService, sessionChallengeText } from '../../src/auth/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type {
  LocalPrincipal,
  MemberEntry,
  MessageEntry,
  Room,
  RoomManagerInit,
} from '../../src/rooms/index.ts'
import { contentId, makeSeal, RoomManager, sealKey } from '../../src/rooms/index.ts'
import type { MeshStore } from '../../src/store/index.ts'
import {
  autoAcceptRooms,
  decide,
  requestConnection,
  shareAct,
  startNode,
  statusAt,
  type TestNode,
} from '../connections/nodes.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

/** Mesh keys for tests: meshA is alice's and bob's home, meshB carol's, meshM mallory's. */
export const meshA = new Ed25519KeyPair(Buffer.alloc(32, 11))
export const meshB = new Ed25519KeyPair(Buffer.alloc(32, 12))
export const meshC = new Ed25519KeyPair(Buffer.alloc(32, 13))
export const carol = new Ed25519KeyPair(Buffer.alloc(32, 4))
export const dave = new Ed25519KeyPair(Buffer.alloc(32, 5))

export const PRINCIPALS: Record<string, Record<string, LocalPrincipal>> = {
  [meshA.did]: { [alice.did]: { localId: 'alice', tier: 1 }, [bob.did]: { localId: 'bob', tier: 4 } },
  [meshB.did]: { [carol.did]: { localId: 'carol', tier: 2 }, [mallory.did]: { localId: 'mallory', tier: 4 } },
  [meshC.did]: { [dave.did]: { localId: 'dave', tier: 4 } },
}

const NAMES: Record<string, string> = { [meshA.did]: 'alpha', [meshB.did]: 'beta', [meshC.did]: 'gamma' }

export async function manager(
  t: TestContext,
  key: Ed25519KeyPair,
  options: { store?: MeshStore } & Partial<RoomManagerInit> = {},
): Promise<RoomManager> {
  const store = options.store ?? (await tempStore(t))
  const rooms = new RoomManager({
    localPrincipal: async (did) => PRINCIPALS[key.did]?.[did],
    ...options,
    store,
    key: options.key ?? (() => key),
    meshName: NAMES[key.did] ?? 'mesh',
  })
  await rooms.start()
  t.after(() => rooms.stop())
  return rooms
}

export interface SharedRoom {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
}

/**
 * Mesh A (alice, bob) homes a room shared with mesh B, where `betaMembers` (default
 * carol and mallory) join; replicas in sync. `before(id)` runs at A before B adopts.
 */
export async function sharedRoom(
  t: TestContext,
  options: {
    a?: Partial<RoomManagerInit> & { store?: MeshStore }
    b?: Partial<RoomManagerInit> & { store?: MeshStore }
    betaMembers?: Ed25519KeyPair[]
    before?: (a: RoomManager, id: string) => Promise<unknown>
  } = {},
): Promise<SharedRoom> {
  const a = await manager(t, meshA, options.a)
  const b = await manager(t, meshB, options.b)
  const { id } = await a.create({ name: 'general', creator: alice.did })
  await a.join(id, bob.did)
  await options.before?.(a, id)
  await b.adopt({ id, homeMesh: meshA.did })
  const roomA = await a.load(id)
  const roomB = await b.load(id)
  if (!(await sync(roomA, roomB, meshA.did)).ok) throw new Error('the share did not sync')
  for (const member of options.betaMembers ?? [carol, mallory]) await b.join(id, member.did)
  return { a, b, roomA, roomB, id }
}

/** Sends `to` everything `from` has that it lacks, as a peer update from `fromMesh`. */
export async function sync(from: Room, to: Room, fromMesh: string) {
  const diff = Y.encodeStateAsUpdate(from.doc, Y.encodeStateVector(to.doc))
  return to.applyUpdate(diff, { kind: 'peer', meshDid: fromMesh })
}

/** A doc with the same state as the room, for crafting updates. */
export function replica(room: Room, clientID?: number): Y.Doc {
  const doc = new Y.Doc({ gc: false })
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(room.doc))
  // After the apply: Yjs picks a new client id when an update carries the doc's own.
  if (clientID !== undefined) doc.clientID = clientID
  return doc
}

/** What `change` did to a replica, as one update. */
export function craft(room: Room, change: (doc: Y.Doc) => void, clientID?: number): Uint8Array {
  const doc = replica(room, clientID)
  const before = Y.encodeStateVector(doc)
  change(doc)
  return Y.encodeStateAsUpdate(doc, before)
}

/**
 * Writes messages sealed by `key`'s mesh into `doc` in one transaction; with `bind`,
 * first binds that Yjs client id to the mesh (sealed too), as a replica's first write does.
 */
export function writeSealed(
  doc: Y.Doc,
  key: Ed25519KeyPair,
  roomId: string,
  entries: MessageEntry[],
  bind?: number,
): void {
  doc.transact(() => {
    if (bind !== undefined) {
      const client = String(bind)
      const binding = { mesh: key.did, room: roomId }
      doc.getMap('clients').set(client, binding)
      doc.getMap('seals').set(sealKey('clients', client), makeSeal(key, roomId, 'clients', client, binding))
    }
    for (const entry of entries) {
      const id = contentId(entry)
      doc.getMap('messages').set(id, entry)
      doc.getMap('seals').set(sealKey('messages', id), makeSeal(key, roomId, 'messages', id, entry))
    }
  })
}

/** The update of messages by a fresh client id of `key`'s mesh, bound in the same update. */
export function boundWrite(room: Room, key: Ed25519KeyPair, entries: MessageEntry[], clientID: number) {
  return craft(room, (doc) => writeSealed(doc, key, room.id, entries, clientID), clientID)
}

/** Makes alpha's bob a read-only member of `room` (an entry dated after those it holds). */
export async function makeBobReadOnly(room: Room): Promise<void> {
  const entry: MemberEntry = {
    v: 1,
    room: room.id,
    did: bob.did,
    mesh: meshA.did,
    meshName: 'alpha',
    localId: 'bob',
    role: 'read-only',
    tier: 4,
    ts: Date.now() + 1,
  }
  await room.write([{ map: 'members', key: contentId(entry), value: entry }])
}

/** A room's full content as plain JSON, for "identical" checks. */
export function content(room: Room | Y.Doc): Record<string, unknown> {
  const doc = room instanceof Y.Doc ? room : room.doc
  const out: Record<string, unknown> = {}
  for (const name of ['meta', 'messages', 'reactions', 'redactions', 'members', 'clients', 'seals'])
    out[name] = doc.getMap(name).toJSON()
  return out
}

/**
 * A room's entries (content less client bindings and seals): a refused write may leave
 * its writer's client id bound (the hole it leaves answers to it), never an entry.
 */
export function entries(room: Room | Y.Doc): Record<string, unknown> {
  const { clients: _c, seals: _s, ...rest } = content(room)
  return rest
}

/** Polls `check` every 50 ms until it returns a truthy value; fails after `ms`. */
export async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      last = err
    }
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}

/** `a` requests a connection with `b` and `b` accepts it; each wait up to `ms`. */
export async function connect(a: TestNode, b: TestNode, ms = 60_000): Promise<void> {
  const id = await requestConnection(a, b)
  await until(async () => (await statusAt(b, id))?.status === 'pending', 'request arrives', ms)
  await decide(b, id, 'accept')
  await until(async () => (await statusAt(a, id))?.status === 'accepted', 'accepted', ms)
}

export { alice, bob, mallory }

/**
 * Two real nodes, alpha and beta, connected; a room of alpha's shared with beta (which
 * accepts rooms at once) and joined by beta's architect.
 */
export async function twoNodesSharing(
  t: TestContext,
  options: Parameters<typeof startNode>[2] = {},
): Promise<{ a: TestNode; b: TestNode; id: string }> {
  const a = await startNode(t, 'alpha', options)
  const b = await startNode(t, 'beta', options)
  await autoAcceptRooms(b) // rooms shared with beta are accepted at once (SPEC §9)
  await connect(a, b)
  const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'shared' })
  await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
  await until(
    async () =>
      (await b.api.get<{ rooms: Array<{ id: string }> }>('/api/rooms')).rooms.some((r) => r.id === id),
    'beta holds the room',
  )
  await b.api.post(`/api/rooms/${id}/join`, {})
  return { a, b, id }
}

/** A session token for `key` at the mesh `meshDid`, through the challenge a client signs. */
export async function sessionToken(
  sessions: SessionService,
  meshDid: string,
  key: Ed25519KeyPair,
): Promise<string> {
  const { nonce } = sessions.challenge()
  const signature = Buffer.from(
    key.sign(new TextEncoder().encode(sessionChallengeText(meshDid, nonce))),
  ).toString('base64url')
  return (await sessions.open({ did: key.did, nonce, signature })).token
}
