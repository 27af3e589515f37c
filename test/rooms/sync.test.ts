import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type * as API from '@ucanto/interface'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import {
  encodeToken,
  issueDelegation,
  issueInvocation,
  issueMembershipCredential,
  roomResourceOf,
} from '../../src/auth/authority/index.ts'
import type { RejectedEntry } from '../../src/connections/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { loadMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshLibp2p } from '../../src/p2p/index.ts'
import {
  contentId,
  decodeFrame,
  encodeFrame,
  MESH_ROOMS_PROTOCOL,
  type MessageEntry,
  type RoomFrame,
  type RoomSyncStatus,
  signShare,
} from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import {
  autoAcceptRooms,
  dmAct,
  formerInterimAct,
  shareAct,
  startNode,
  type TestNode,
} from '../connections/nodes.ts'
import { connect, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

async function share(from: TestNode, room: string, to: TestNode) {
  await autoAcceptRooms(to)
  return from.api.post<{ room: string; peer: string; direction: string }>(`/api/rooms/${room}/share`, {
    mesh: to.node.did,
    ucan: await shareAct(from, room, to.node.did),
  })
}

type Msg = { id: string; author: string; body: string; mesh: string }
async function messages(n: TestNode, room: string): Promise<Msg[]> {
  return (await n.api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages
}
async function stateVector(n: TestNode, room: string): Promise<string> {
  return (await n.api.get<{ stateVector: string }>(`/api/rooms/${room}`)).stateVector
}
async function rejected(n: TestNode): Promise<RejectedEntry[]> {
  return (await n.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries
}

async function pair(t: TestContext) {
  const a = await startNode(t, 'alpha', { rooms: ROOMS })
  const b = await startNode(t, 'beta', { rooms: ROOMS })
  await connect(a, b)
  return { a, b }
}

describe('rooms shared between meshes over /mesh/rooms/1.0.0', () => {
  it('shares a room by a human act, syncs both ways, joins the peer architect as a tier-4 foreign member', async (t) => {
    const { a, b } = await pair(t)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general', topic: 'all' })
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'hello from alpha' })
    // A chain for another peer, another room, the former interim act form, or no accepted connection: refused.
    const elsewhere = await a.api.post<{ id: string }>('/api/rooms', { name: 'elsewhere' })
    for (const ucan of [
      await shareAct(a, id, a.architect.did),
      await shareAct(a, elsewhere.id, b.node.did),
      await a.act('room/share', b.node.did),
    ])
      await assert.rejects(a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan }), {
        code: 'MESH_UCAN_INVALID',
      })
    await assert.rejects(
      a.api.post(`/api/rooms/${id}/share`, {
        mesh: b.node.did,
        ucan: formerInterimAct(a, 'room/share', `${id}:${b.node.did}`),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    const loner = await startNode(t, 'gamma', { rooms: ROOMS })
    await assert.rejects(share(a, id, loner), { code: 'MESH_NOT_CONNECTED' })
    const shared = await share(a, id, b)
    assert.equal(shared.direction, 'out')

    const onB = await until(
      async () =>
        (
          await b.api.get<{ rooms: Array<{ id: string; federated: boolean; name: string }> }>('/api/rooms')
        ).rooms.find((r) => r.id === id),
      'room adopted by beta',
    )
    assert.equal(onB.federated, true)
    const members = await until(async () => {
      const list = await b.api.get<{ members: Array<{ name: string; tier: number; local: boolean }> }>(
        `/api/rooms/${id}/members`,
      )
      return list.members.length === 2 ? list.members : undefined
    }, 'beta architect joined')
    assert.deepEqual(members.find((m) => m.local)?.tier, 4)
    await until(
      async () => (await messages(b, id)).some((m) => m.body === 'hello from alpha'),
      'alpha message at beta',
    )
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'hello from beta' })
    const seen = await until(async () => {
      const list = await messages(a, id)
      return list.some((m) => m.body === 'hello from beta') ? list : undefined
    }, 'beta message at alpha')
    assert.equal(seen.find((m) => m.body === 'hello from beta')?.author, '@beta-architect:beta')
    await until(async () => (await stateVector(a, id)) === (await stateVector(b, id)), 'equal state vectors')
    const sync = await a.api.get<RoomSyncStatus>(`/api/rooms/${id}/sync`)
    assert.equal(sync.peers.length, 1)
    assert.equal(sync.peers[0]?.link, 'open')
    await until(async () => (await a.api.get<RoomSyncStatus>(`/api/rooms/${id}/sync`)).caughtUp, 'caught up')

    // The foreign-participant limit is enforced when sharing.
    const other = await a.api.post<{ id: string }>('/api/rooms', { name: 'small' })
    const policy = await a.api.get<Record<string, unknown>>('/api/federation/policy')
    await a.api.put('/api/federation/policy', { ...policy, maxForeignParticipantsPerRoom: 0 })
    await assert.rejects(share(a, other.id, b), { code: 'MESH_POLICY_REJECTED' })
  })

  it('federated DM: a 1:1 room with one foreign participant, who joins on its own mesh; presence travels, stamped', async (t) => {
    const { a, b } = await pair(t)
    const bob = b.architect.did
    await assert.rejects(
      a.api.post('/api/me/federated-dms', { with: bob, ucan: await dmAct(a, bob) }),
      { code: 'MESH_BAD_REQUEST' }, // bob's mesh is not known yet
    )
    const dm = await a.api.post<{ room: string; peer: string; name: string }>('/api/me/federated-dms', {
      with: bob,
      mesh: b.node.did,
      ucan: await dmAct(a, bob),
    })
    assert.equal(dm.peer, b.node.did)
    const members = await until(async () => {
      const list = await a.api.get<{ members: Array<{ did: string; name: string; tier: number }> }>(
        `/api/rooms/${dm.room}/members`,
      )
      return list.members.length === 2 ? list.members : undefined
    }, 'bob joined the dm')
    assert.deepEqual(members.find((m) => m.did === bob)?.tier, 4)
    assert.equal(members.find((m) => m.did === bob)?.name, '@beta-architect:beta')
    // Listed by who it is with, on both sides (issue 14), not by its stored `dm <did tail>@beta`.
    const listed = async (n: typeof a) =>
      (await n.api.get<{ rooms: Array<{ id: string; with?: unknown }> }>('/api/rooms')).rooms.find(
        (r) => r.id === dm.room,
      )?.with
    assert.deepEqual(await listed(a), [{ did: bob, name: '@beta-architect:beta' }])
    const atBeta = await until(async () => {
      const w = await listed(b)
      return Array.isArray(w) && w.length === 1 ? w : undefined
    }, 'the dm listed at beta with alpha’s architect')
    assert.deepEqual(atBeta, [{ did: a.architect.did, name: '@alpha-architect:alpha' }])
    await b.api.post(`/api/rooms/${dm.room}/messages`, { body: 'hi alpha, privately' })
    await until(async () => (await messages(a, dm.room)).length === 1, 'dm message at alpha')

    // Presence: a state of one of alpha's clients reaches beta, stamped with alpha's mesh.
    const roomA = await a.node.rooms.load(dm.room)
    const roomB = await b.node.rooms.load(dm.room)
    const typing = encoding.createEncoder()
    encoding.writeVarUint(typing, 1)
    encoding.writeVarUint(typing, 31337)
    encoding.writeVarUint(typing, 1)
    encoding.writeVarString(typing, JSON.stringify({ typing: true }))
    awarenessProtocol.applyAwarenessUpdate(roomA.awareness, encoding.toUint8Array(typing), 'a local client')
    const state = await until(() => roomB.awareness.getStates().get(31337), 'presence at beta')
    assert.deepEqual(state, { typing: true, mesh: a.node.did })
  })

  it('catches up after being offline, in chunks of maxBackfillEventsPerRequest, and reports progress', async (t) => {
    const { a, b } = await pair(t)
    const policy = await a.api.get<Record<string, unknown>>('/api/federation/policy')
    await a.api.put('/api/federation/policy', { ...policy, maxBackfillEventsPerRequest: 25 })
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    await share(a, id, b)
    await until(
      async () =>
        (await messages(b, id).catch(() => [])).length === 0 &&
        (await b.api.get<{ rooms: unknown[] }>('/api/rooms')).rooms.length === 1,
      'adopted',
    )
    await until(
      async () => (await stateVector(a, id)) === (await stateVector(b, id).catch(() => '')),
      'first sync',
    )
    await b.stop()
    for (let i = 0; i < 120; i++) await a.api.post(`/api/rooms/${id}/messages`, { body: `while away ${i}` })
    await b.restart({ rooms: ROOMS })
    await until(async () => (await messages(b, id)).length === 120, 'beta caught up')
    await until(async () => (await stateVector(a, id)) === (await stateVector(b, id)), 'equal state vectors')
    const status = await b.api.get<RoomSyncStatus>(`/api/rooms/${id}/sync`)
    const incoming = status.peers[0]?.incoming
    assert.ok(incoming !== undefined)
    assert.ok(incoming.chunks >= 5, `chunks ${incoming.chunks}`)
    assert.equal(incoming.chunksDone, incoming.chunks)
    assert.equal(incoming.entriesDone, incoming.entries)
    assert.ok(incoming.entries >= 120)
    const outgoing = (await a.api.get<RoomSyncStatus>(`/api/rooms/${id}/sync`)).peers[0]?.outgoing
    assert.equal(outgoing?.chunks, incoming.chunks)
  })

  it('three meshes converge over A–B and B–C links only; C verifies A’s seals', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    const c = await startNode(t, 'gamma', { rooms: ROOMS })
    await connect(a, b)
    await connect(b, c)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'trio' })
    await share(a, id, b)
    await until(
      async () => (await b.api.get<{ rooms: unknown[] }>('/api/rooms')).rooms.length === 1,
      'adopted by b',
    )
    await share(b, id, c)
    await until(
      async () => (await c.api.get<{ rooms: unknown[] }>('/api/rooms')).rooms.length === 1,
      'adopted by c',
    )
    const all = [a, b, c]
    await until(async () => {
      for (const n of all) {
        const members = await n.api
          .get<{ members: unknown[] }>(`/api/rooms/${id}/members`)
          .catch(() => ({ members: [] }))
        if (members.members.length !== 3) return false
      }
      return true
    }, 'three members everywhere')
    for (const [i, n] of all.entries()) {
      for (let k = 0; k < 5; k++)
        await n.api.post(`/api/rooms/${id}/messages`, { body: `${n.name} ${i}.${k}` })
    }
    await until(async () => {
      const lists = await Promise.all(all.map((n) => messages(n, id)))
      return (
        lists.every((l) => l.length === 15) && new Set(lists.map((l) => l.map((m) => m.id).join())).size === 1
      )
    }, 'every mesh sees every message once')
    await until(
      async () => new Set(await Promise.all(all.map((n) => stateVector(n, id)))).size === 1,
      'equal state vectors',
    )
    // C received alpha's messages only through beta.
    assert.ok(!c.node.roomSync.links().includes(a.node.did))
  })

  it('hostile shares on the wire: a chain without a human, a forged root, a chain for another room — refused; a human-signed one applied', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const m = await startNode(t, 'mallory', { rooms: ROOMS })
    await connect(m, a)
    // Mallory's node steps aside; a bare host with its key sends shares by hand.
    const dataDir = m.dataDir
    const architect = m.architect
    await m.stop()
    const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
    await store.open()
    const { key } = await loadMesh(store, dataDir)
    await store.close()
    const host = await createMeshLibp2p({ key })
    t.after(() => host.stop())
    const stream = await host.dialProtocol(multiaddr(a.addr()), MESH_ROOMS_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
    const frames: RoomFrame[] = []
    void (async () => {
      for (;;) frames.push(decodeFrame((await lp.read()).subarray()))
    })().catch(() => {})

    const exp = Math.floor(Date.now() / 1000) + 600
    const bot = new Ed25519KeyPair(Buffer.alloc(32, 77))
    const root = (issuer: Ed25519KeyPair, audience: string) =>
      issueDelegation({ issuer, audience, capabilities: [{ can: '*', with: key.did }], expiration: exp })
    const human = await issueMembershipCredential(key, {
      id: architect.did,
      kind: 'human',
      role: 'architect',
      tier: 1,
      mesh: key.did,
      meshName: 'mallory',
    })
    const invoke = async (signer: Ed25519KeyPair, room: string, proofs: API.Delegation[]) =>
      encodeToken(
        await issueInvocation({
          issuer: signer,
          audience: key.did,
          capability: { can: 'room/share', with: roomResourceOf(key.did, room), nb: { peer: a.node.did } },
          expiration: exp,
          proofs,
        }),
      )
    const send = async (room: string, act: string, credentials: string[] = []) => {
      const signed = signShare(key, {
        room,
        homeMesh: key.did,
        name: room,
        topic: '',
        to: a.node.did,
        act,
        ...(credentials.length > 0 ? { credentials } : {}),
        decidedAt: Date.now(),
      })
      await lp.write(encodeFrame({ room, type: 'share', json: JSON.stringify(signed) }))
    }
    const refusedWith = async (room: string, code: string) => {
      const frame = await until(
        () => frames.find((f) => f.type === 'refused' && f.room === room),
        `${code} for ${room}`,
      )
      assert.equal((frame as { code: string }).code, code)
      await sleep(1100) // one refusal per peer and reason is reported per second
    }
    const roomIds = ['hostile-001', 'hostile-002', 'hostile-003', 'hostile-004', 'honest-0001']

    // 1. The mesh key alone: no human signed.
    await send(roomIds[0] as string, await invoke(key, roomIds[0] as string, []))
    await refusedWith(roomIds[0] as string, 'MESH_NOT_HUMAN_SIGNED')
    // 2. A bot the mesh delegated to, with no human credential in the chain.
    const toBot = await issueDelegation({
      issuer: key,
      audience: bot.did,
      capabilities: [{ can: 'room/share', with: key.did }],
      expiration: exp,
    })
    await send(roomIds[1] as string, await invoke(bot, roomIds[1] as string, [toBot]))
    await refusedWith(roomIds[1] as string, 'MESH_NOT_HUMAN_SIGNED')
    // 3. A forged root: the architect's chain rooted in a key that is not mallory's mesh.
    await send(
      roomIds[2] as string,
      await invoke(architect, roomIds[2] as string, [await root(bot, architect.did)]),
      [human],
    )
    await refusedWith(roomIds[2] as string, 'MESH_UCAN_INVALID')
    // 4. A human-signed chain for another room.
    await send(
      roomIds[3] as string,
      await invoke(architect, roomIds[4] as string, [await root(key, architect.did)]),
      [human],
    )
    await refusedWith(roomIds[3] as string, 'MESH_UCAN_INVALID')
    for (const id of roomIds.slice(0, 4))
      await assert.rejects(a.api.get(`/api/rooms/${id}`), { code: 'MESH_NOT_FOUND' })

    // Sentinel: the architect's chain with mallory's credential of its human is applied: a
    // pending invitation (room lifecycle, SPEC §9), nothing of the room stored yet.
    const honest = roomIds[4] as string
    await send(honest, await invoke(architect, honest, [await root(key, architect.did)]), [human])
    await until(
      async () =>
        (
          await a.api.get<{ invitations: Array<{ room: string; status: string }> }>('/api/rooms/invitations')
        ).invitations.find((i) => i.room === honest && i.status === 'pending'),
      'the honest share is an invitation',
    )
    await assert.rejects(a.api.get(`/api/rooms/${honest}`), { code: 'MESH_NOT_FOUND' })
    assert.ok(!frames.some((f) => f.type === 'refused' && f.room === honest))
    const audit = await a.api.get<{ entries: Array<{ action: string; details: { human?: string } }> }>(
      '/api/audit?action=rooms.share.received',
    )
    assert.equal(audit.entries[0]?.details.human, architect.did)
  })

  it('hostile peer on the wire: not-shared room, forged update, 10,000 malformed frames, awareness impersonation, oversized frame', async (t) => {
    const { a, b } = await pair(t)
    const m = await startNode(t, 'mallory', { rooms: ROOMS })
    await connect(m, a)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'private' })
    await share(a, id, b)
    const open = await a.api.post<{ id: string }>('/api/rooms', { name: 'with-mallory' })
    await share(a, open.id, m)
    await until(
      async () => (await m.api.get<{ rooms: unknown[] }>('/api/rooms')).rooms.length === 1,
      'adopted by mallory',
    )
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'before the attack' })
    await until(async () => (await messages(b, id)).length === 1, 'beta synced')

    // Mallory's node steps aside; a bare host with its key speaks the protocol by hand.
    const dataDir = m.dataDir
    await m.stop()
    const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
    await store.open()
    const { key } = await loadMesh(store, dataDir)
    await store.close()
    const host = await createMeshLibp2p({ key })
    t.after(() => host.stop())
    const dial = async (): Promise<{
      stream: Stream
      frames: RoomFrame[]
      write: (b: Uint8Array) => Promise<void>
    }> => {
      const stream = await host.dialProtocol(multiaddr(a.addr()), MESH_ROOMS_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
      const frames: RoomFrame[] = []
      void (async () => {
        for (;;) frames.push(decodeFrame((await lp.read()).subarray()))
      })().catch(() => {})
      return { stream, frames, write: (bytes) => lp.write(bytes) }
    }
    const heapBefore = process.memoryUsage().heapUsed
    const link = await dial()
    const roomOfA = await a.node.rooms.load(id)

    // 1. A room not shared with mallory: refused, logged, the link stays up.
    const sv = Y.encodeStateVector(new Y.Doc())
    await link.write(encodeFrame({ room: id, type: 'step1', stateVector: sv }))
    await link.write(encodeFrame({ room: id, type: 'update', update: Y.encodeStateAsUpdate(roomOfA.doc) }))
    await until(
      async () => (await rejected(a)).some((e) => e.details.reason === 'not-shared'),
      'not-shared refusal',
    )
    assert.ok(link.frames.some((f) => f.type === 'refused' && f.room === id))
    assert.ok(!link.frames.some((f) => f.room === id && (f.type === 'step2' || f.type === 'backfill')))

    // 2. A forged update to the room shared with mallory: a message by alpha's architect, sealed by nobody.
    const shared = await a.node.rooms.load(open.id)
    const forged = new Y.Doc({ gc: false })
    Y.applyUpdate(forged, Y.encodeStateAsUpdate(shared.doc))
    forged.clientID = 4242
    const before = Y.encodeStateVector(forged)
    const fake: MessageEntry = {
      v: 1,
      room: open.id,
      author: a.architect.did,
      authorMesh: a.node.did,
      body: 'forged',
      mentions: [],
      ts: Date.now(),
    }
    forged.getMap('messages').set(contentId(fake), fake)
    await link.write(
      encodeFrame({ room: open.id, type: 'update', update: Y.encodeStateAsUpdate(forged, before) }),
    )

    // 3. 10,000 seeded malformed frames: random bytes, and valid room ids with garbage after them.
    let seed = 12345
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed
    }
    for (let i = 0; i < 10_000; i++) {
      const len = 1 + (rand() % 200)
      const bytes = new Uint8Array(len)
      for (let j = 0; j < len; j++) bytes[j] = rand() & 0xff
      if (i % 2 === 0) {
        const e = encoding.createEncoder()
        encoding.writeVarString(e, open.id)
        encoding.writeVarUint(e, rand() % 6)
        encoding.writeUint8Array(e, bytes)
        await link.write(encoding.toUint8Array(e))
      } else {
        await link.write(bytes)
      }
    }

    // 4. Awareness: a client id bound to alpha is refused; mallory's own (unbound) one is stamped.
    const alphaClient = shared.doc.clientID
    const aw = encoding.createEncoder()
    encoding.writeVarUint(aw, 2)
    encoding.writeVarUint(aw, alphaClient)
    encoding.writeVarUint(aw, 1)
    encoding.writeVarString(aw, JSON.stringify({ user: 'alpha-architect' }))
    encoding.writeVarUint(aw, 777)
    encoding.writeVarUint(aw, 1)
    encoding.writeVarString(aw, JSON.stringify({ user: 'mallory', typing: true }))
    await link.write(encodeFrame({ room: open.id, type: 'awareness', update: encoding.toUint8Array(aw) }))

    // The link is still healthy: a SyncStep1 is answered.
    await link.write(encodeFrame({ room: open.id, type: 'step1', stateVector: sv }))
    await until(
      () => link.frames.some((f) => f.room === open.id && f.type === 'backfill'),
      'answer after the flood',
      30_000,
    )
    const states = shared.awareness.getStates()
    assert.equal((states.get(777) as { mesh?: string } | undefined)?.mesh, key.did)
    assert.equal(states.get(alphaClient), undefined)
    // Refusals reach the rejected log after the frames are handled: wait for each row.
    for (const r of ['not-shared', 'malformed', 'awareness-impersonation', 'missing-seal'])
      await until(
        async () => (await rejected(a)).some((e) => e.details.reason === r),
        `${r} in the rejected log`,
        30_000,
      )
    assert.equal(shared.message(contentId(fake)), undefined)

    // 5. An oversized frame closes that link, nothing else.
    const huge = new Uint8Array(2 * 1024 * 1024)
    await link.write(huge).catch(() => {})
    await until(async () => (await rejected(a)).some((e) => e.code === 'MESH_TOO_LARGE'), 'oversized refused')

    // Sentinel: the honest pair still syncs, replicas identical, memory bounded.
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'sentinel' })
    await until(async () => (await messages(a, id)).some((m) => m.body === 'sentinel'), 'sentinel at alpha')
    await until(async () => (await stateVector(a, id)) === (await stateVector(b, id)), 'equal state vectors')
    assert.equal((await messages(a, id)).length, 2)
    const grown = process.memoryUsage().heapUsed - heapBefore
    assert.ok(grown < 200 * 1024 * 1024, `heap grew ${grown}`)

    // A peer with no common version: the dial is refused by protocol negotiation.
    await assert.rejects(host.dialProtocol(multiaddr(a.addr()), '/mesh/rooms/9.0.0'), {
      name: 'UnsupportedProtocolError',
    })
    // And alpha, dialing a peer that does not speak the protocol, reports MESH_PROTOCOL_VERSION.
    const status = await until(async () => {
      const s = await a.api.get<RoomSyncStatus>(`/api/rooms/${open.id}/sync`)
      return s.peers[0]?.lastError?.code === 'MESH_PROTOCOL_VERSION' ? s : undefined
    }, 'protocol version error')
    assert.equal(status.peers[0]?.link, 'closed')
  })
})
