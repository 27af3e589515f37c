import assert from 'node:assert/strict'
import { cp } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { issueDelegation, roomResourceOf } from '../../src/auth/authority/index.ts'
import { MemberBook } from '../../src/auth/members.ts'
import { invocationToken, proofOf } from '../../src/cli/chains.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { createMeshNode } from '../../src/mesh-node.ts'
import { contentId, type MessageEntry } from '../../src/rooms/index.ts'
import { autoAcceptRooms, FAST, listenOf, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { tempDir } from '../fixtures/principals.ts'
import { connect, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
const carol = new Ed25519KeyPair(Buffer.alloc(32, 41))
const bot = new Ed25519KeyPair(Buffer.alloc(32, 42))

type Msg = {
  id: string
  author: string
  authorDid: string
  body: string
  redacted?: true
  reactions: Record<string, number>
}
type RejectedEntry = { code: string; details: Record<string, unknown> }

async function messages(api: HttpClient, room: string): Promise<Msg[]> {
  return (await api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages
}

/** Enrols `key` on `node` as the members helper's routes will (MemberBook over the node's store). */
async function enroll(n: TestNode, key: Ed25519KeyPair, role: 'human' | 'agent', name: string) {
  const book = new MemberBook({ store: n.node.store, architectDid: n.architect.did })
  await book.enroll({ did: key.did, kind: role, role, name })
}

describe('members everywhere: rooms for every enrolled member', () => {
  it('a member who is not the architect creates, joins, posts, reacts, reads, syncs over y-websocket and is mentioned; room roles by owner only', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    await enroll(a, carol, 'human', 'carol')
    await enroll(a, bot, 'agent', 'bot')
    const asCarol = await signIn(a.node.httpUrl, carol)
    const asBot = await signIn(a.node.httpUrl, bot)

    // Carol creates a room: its owner, at her tier (4).
    const own = await asCarol.post<{ id: string }>('/api/rooms', { name: 'carols' })
    const mine = await asCarol.get<{ members: Array<{ did: string; role: string; tier: number }> }>(
      `/api/rooms/${own.id}/members`,
    )
    assert.deepEqual(
      mine.members.map((m) => [m.did, m.role, m.tier]),
      [[carol.did, 'owner', 4]],
    )

    // The architect's room: carol and the bot join, post, react, read.
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    const joined = await asCarol.post<{ role: string; tier: number; name: string }>(
      `/api/rooms/${id}/join`,
      {},
    )
    assert.deepEqual([joined.role, joined.tier, joined.name], ['member', 4, '@carol'])
    await asBot.post(`/api/rooms/${id}/join`, {})
    const hello = await a.api.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'hi @carol and @bot',
    })
    await asCarol.post(`/api/rooms/${id}/messages/${hello.id}/reactions`, { emoji: '👍' })
    const mention = await asBot.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: '@carol beep' })
    const read = await messages(asCarol, id)
    assert.equal(read.find((m) => m.id === hello.id)?.reactions['👍'], 1)
    assert.equal(read.find((m) => m.id === mention.id)?.author, '@bot')

    // Mentions land on carol's own notifications (not the architect's).
    const notes = await asCarol.get<{ notifications: Array<{ message: string }> }>('/api/me/notifications')
    assert.deepEqual(new Set(notes.notifications.map((n) => n.message)), new Set([hello.id, mention.id]))
    const archNotes = await a.api.get<{ notifications: unknown[] }>('/api/me/notifications')
    assert.equal(archNotes.notifications.length, 0)

    // y-websocket with a ticket from carol's session: she sees the room and writes through it.
    const { ticket } = await asCarol.post<{ ticket: string }>(`/api/rooms/${id}/yjs-ticket`, {})
    const doc = new Y.Doc()
    const provider = new WebsocketProvider(`ws://${new URL(a.node.httpUrl).host}/yjs`, id, doc, {
      params: { token: ticket },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
      shouldReconnect: () => false,
    } as ConstructorParameters<typeof WebsocketProvider>[3])
    t.after(() => {
      provider.destroy()
      doc.destroy() // also stops the provider’s awareness timer
    })
    await until(() => doc.getMap('messages').has(hello.id), 'carol’s replica synced')
    const entry: MessageEntry = {
      v: 1,
      room: id,
      author: carol.did,
      authorMesh: a.node.did,
      body: 'from my websocket',
      mentions: [],
      ts: Date.now(),
    }
    doc.getMap('messages').set(contentId(entry), entry)
    await until(
      async () =>
        (await messages(a.api, id)).some((m) => m.body === 'from my websocket' && m.author === '@carol'),
      'carol’s websocket write sealed by alpha',
    )

    // Room roles: a member may not set them; the owner may; a moderator then may too. Each
    // change is the actor's own room/role act (SPEC §9): carol's chain is a delegation
    // from the architect.
    const root = proofOf((await a.api.get<{ token: string }>('/api/auth/root-delegation')).token)
    const grant = await issueDelegation({
      issuer: a.architect,
      audience: carol.did,
      capabilities: [{ can: 'room/role', with: a.node.did }],
      expiration: Math.floor(Date.now() / 1000) + 600,
      proofs: [root],
    })
    const roleAct = (signer: Ed25519KeyPair, did: string, role: string) =>
      invocationToken(
        signer,
        a.node.did,
        { can: 'room/role', with: roomResourceOf(a.node.did, id), nb: { did, role } },
        signer === carol ? [grant] : [root],
      )
    const setRole = async (as: HttpClient, signer: Ed25519KeyPair, did: string, role: string) =>
      as.put<{ role: string }>(`/api/rooms/${id}/members/${did}`, {
        role,
        ucan: await roleAct(signer, did, role),
      })
    await assert.rejects(setRole(asCarol, carol, bot.did, 'read-only'), {
      code: 'MESH_FORBIDDEN',
    })
    // Without an act, or with an act for another role: refused.
    await assert.rejects(a.api.put(`/api/rooms/${id}/members/${carol.did}`, { role: 'moderator' }), {
      code: 'MESH_BAD_REQUEST',
    })
    await assert.rejects(
      a.api.put(`/api/rooms/${id}/members/${carol.did}`, {
        role: 'moderator',
        ucan: await roleAct(a.architect, carol.did, 'owner'),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    const promoted = await setRole(a.api, a.architect, carol.did, 'moderator')
    assert.equal(promoted.role, 'moderator')
    const muted = await setRole(asCarol, carol, bot.did, 'read-only')
    assert.equal(muted.role, 'read-only')
    await assert.rejects(asBot.post(`/api/rooms/${id}/messages`, { body: 'muted?' }), {
      code: 'MESH_FORBIDDEN',
    })
    await assert.rejects(setRole(asCarol, carol, a.architect.did, 'member'), {
      code: 'MESH_FORBIDDEN',
    })
    // Hostile input on the new route: unknown role, unknown field, a did that is no member.
    const ucan = await roleAct(a.architect, bot.did, 'member')
    await assert.rejects(a.api.put(`/api/rooms/${id}/members/${bot.did}`, { role: 'god', ucan }), {
      code: 'MESH_BAD_REQUEST',
    })
    await assert.rejects(a.api.put(`/api/rooms/${id}/members/${bot.did}`, { role: 'member', ucan, x: 1 }), {
      code: 'MESH_BAD_REQUEST',
    })
    await assert.rejects(a.api.put(`/api/rooms/${id}/members/not-a-did`, { role: 'member', ucan }), {
      code: 'MESH_BAD_REQUEST',
    })
    await assert.rejects(
      setRole(a.api, a.architect, new Ed25519KeyPair(Buffer.alloc(32, 43)).did, 'member'),
      { code: 'MESH_NOT_FOUND' },
    )
  })
})

describe('members everywhere: a removed member’s room memberships end on every replica', () => {
  it('beta refuses a post a removed member of alpha makes through a replica that missed the removal; a sentinel passes', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    await connect(a, b)
    await enroll(a, carol, 'human', 'carol')
    const asCarol = await signIn(a.node.httpUrl, carol)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'shared' })
    await asCarol.post(`/api/rooms/${id}/join`, {})
    const alphaDid = a.node.did
    await autoAcceptRooms(b)
    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
    const before = await asCarol.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'carol, a member',
    })
    await until(
      async () => (await messages(b.api, id)).some((m) => m.id === before.id),
      'carol’s post at beta',
    )
    const atBeta = (await messages(b.api, id)).find((m) => m.id === before.id)
    assert.equal(atBeta?.author, '@carol:alpha')

    // A replica of alpha that will miss the removal: a copy of its data taken now.
    const listen = listenOf(a.node)
    await a.node.stop()
    const staleDir = `${await tempDir(t, 'mesh-alpha-stale-')}/alpha`
    await cp(a.dataDir, staleDir, { recursive: true })
    await a.restart({ rooms: ROOMS, listen })

    // Alpha removes carol: her memberships end by an entry alpha seals, which beta takes.
    assert.deepEqual(await a.node.rooms.endMemberships(carol.did), [id])
    const bRoom = await b.node.rooms.load(id)
    await until(() => bRoom.endedAt(carol.did, a.node.did) !== undefined, 'the ending at beta')
    assert.equal((await messages(b.api, id)).find((m) => m.id === before.id)?.body, 'carol, a member')

    // The stale replica comes up in alpha's place while beta is down; carol still signs in there and posts.
    const bListen = listenOf(b.node)
    await a.node.stop()
    await b.node.stop()
    const stale = createMeshNode({
      dataDir: staleDir,
      http: { host: '127.0.0.1', port: 0 },
      logger: silentLogger(),
      discovery: { intervalMs: 60_000 },
      connections: FAST,
      rooms: ROOMS,
      listen,
    })
    await stale.start()
    t.after(() => stale.stop())
    const staleCarol = await signIn(stale.httpUrl, carol)
    const late = await staleCarol.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'after my removal',
    })
    // Beta comes back: the link syncs both ways.
    await b.restart({ rooms: ROOMS, listen: bListen })
    const bRoom2 = await b.node.rooms.load(id)
    const refused = await until(
      async () =>
        (await b.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries.find(
          (e) => e.details.reason === 'membership-ended',
        ),
      'beta refuses the late post',
    )
    assert.equal(refused.code, 'MESH_UPDATE_REJECTED')
    assert.equal(bRoom2.message(late.id), undefined, 'never applied at beta')
    // The stale replica takes the ending from beta and hides the post there too.
    const staleRoom = await stale.rooms.load(id)
    await until(
      () => staleRoom.endedAt(carol.did, alphaDid) !== undefined,
      'the ending reaches the stale replica',
    )
    assert.equal(staleRoom.view(late.id)?.redacted, true)

    // Sentinel: after the attack, a legitimate post still goes through both ways.
    const sentinel = await b.api.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'sentinel from beta',
    })
    await until(() => staleRoom.message(sentinel.id) !== undefined, 'beta’s sentinel at the stale replica')
    await stale.stop()
    await a.restart({ rooms: ROOMS, listen })
    const fromAlpha = await a.api.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'sentinel from alpha',
    })
    await until(() => bRoom2.message(fromAlpha.id) !== undefined, 'alpha’s sentinel at beta')
    // At alpha itself (her session stands until the members helper's removal ends it) she posts nothing.
    const again = await signIn(a.node.httpUrl, carol)
    await assert.rejects(again.post(`/api/rooms/${id}/messages`, { body: 'again' }), {
      code: 'MESH_FORBIDDEN',
    })
  })
})
