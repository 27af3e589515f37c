import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemberBook } from '../../src/auth/members.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { autoAcceptRooms, shareAct, startNode } from '../connections/nodes.ts'
import { connect, until } from './helpers.ts'

// Issue 14: the README's mention flows, through the one parser (src/api/mentions.ts). Before it,
// `hello @beta-architect:beta` posted on beta mentioned nobody (a local member's `:mesh` form did
// not match) and `hi @alpha-architect:alpha, welcome` mentioned nobody (the comma was read as
// part of the mesh name).

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
const carol = new Ed25519KeyPair(Buffer.alloc(32, 51))

type Msg = { id: string; body: string; mentions: string[] }
type Notes = { notifications: Array<{ message: string; body: string }> }

const messages = async (api: HttpClient, room: string) =>
  (await api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages

describe('mentions in the README flows', () => {
  it('on beta, `hello @beta-architect:beta` mentions beta’s architect and notifies them', async (t) => {
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    await autoAcceptRooms(b) // rooms shared with beta are accepted at once (SPEC §9)
    await new MemberBook({ store: b.node.store, architectDid: b.architect.did }).enroll({
      did: carol.did,
      kind: 'human',
      role: 'human',
      name: 'carol',
    })
    const asCarol = await signIn(b.node.httpUrl, carol)
    const { id } = await b.api.post<{ id: string }>('/api/rooms', { name: 'lobby' })
    await asCarol.post(`/api/rooms/${id}/join`, {})
    // The architect's own post carries the mention (a self-mention writes no notification).
    const own = await b.api.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'hello @beta-architect:beta',
    })
    const posted = await asCarol.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'hello @beta-architect:beta',
    })
    const read = await messages(b.api, id)
    assert.deepEqual(read.find((m) => m.id === own.id)?.mentions, [b.architect.did])
    assert.deepEqual(read.find((m) => m.id === posted.id)?.mentions, [b.architect.did])
    const notes = await b.api.get<Notes>('/api/me/notifications')
    assert.deepEqual(
      notes.notifications.map((n) => n.message),
      [posted.id],
    )
  })

  it('posted on beta in alpha’s shared room, `hi @alpha-architect:alpha, welcome` notifies alpha’s architect', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    await autoAcceptRooms(b) // rooms shared with beta are accepted at once (SPEC §9)
    await connect(a, b)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
    // A mention resolves against the room's members as beta knows them: wait until alpha's
    // architect is among them (they arrive with the room's first sync, after the share).
    await until(async () => {
      const listed = await b.api.get<{ rooms: Array<{ id: string }> }>('/api/rooms')
      if (!listed.rooms.some((r) => r.id === id)) return false
      const { members } = await b.api.get<{ members: Array<{ did: string }> }>(`/api/rooms/${id}/members`)
      return members.some((m) => m.did === a.architect.did)
    }, 'alpha’s architect among the room’s members at beta')
    const posted = await b.api.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'hi @alpha-architect:alpha, welcome',
    })
    assert.deepEqual((await messages(b.api, id)).find((m) => m.id === posted.id)?.mentions, [a.architect.did])
    const notes = await until(async () => {
      const page = await a.api.get<Notes>('/api/me/notifications')
      return page.notifications.length > 0 ? page : undefined
    }, 'the mention notified at alpha')
    assert.deepEqual(
      notes.notifications.map((n) => [n.message, n.body]),
      [[posted.id, 'hi @alpha-architect:alpha, welcome']],
    )
  })
})
