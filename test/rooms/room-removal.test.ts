import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { roomResourceOf } from '../../src/auth/authority/index.ts'
import type { RejectedEntry } from '../../src/connections/index.ts'
import { loadKeyHistory } from '../../src/identity/key-history.ts'
import type { MessageEntry } from '../../src/rooms/index.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { boundWrite, connect, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

type Member = { did: string; role: string }
const members = async (n: TestNode, id: string) =>
  (await n.api.get<{ members: Member[] }>(`/api/rooms/${id}/members`)).members
const bodies = async (n: TestNode, id: string) =>
  (
    await n.api.get<{ messages: Array<{ body: string }> }>(`/api/rooms/${id}/messages?limit=200`)
  ).messages.map((m) => m.body)
const rejected = async (n: TestNode) =>
  (await n.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries
const removeAct = (n: TestNode, id: string, did: string) =>
  n.act('room/remove', did, undefined, roomResourceOf(n.node.did, id))

describe('removing a room member (SPEC §9)', () => {
  it('the home mesh removes a foreign member of an A–B–C room: its later writes are refused on all three meshes', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    const c = await startNode(t, 'gamma', { rooms: ROOMS })
    for (const n of [b, c]) await autoAcceptRooms(n)
    await connect(a, b)
    await connect(b, c)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'abc' })
    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
    await until(async () => (await members(b, id).catch(() => [])).length === 2, 'beta joins')
    await b.api.post(`/api/rooms/${id}/share`, { mesh: c.node.did, ucan: await shareAct(b, id, c.node.did) })
    for (const n of [a, b, c])
      await until(
        async () => (await members(n, id).catch(() => [])).length === 3,
        `three members at ${n.name}`,
      )
    const victim = c.architect.did
    await c.api.post(`/api/rooms/${id}/messages`, { body: 'gamma before' })
    for (const n of [a, b]) await until(async () => (await bodies(n, id)).includes('gamma before'), 'crosses')

    // Only the home mesh removes another mesh's member; a chain for another member is refused.
    await assert.rejects(
      b.api.request('DELETE', `/api/rooms/${id}/members/${a.architect.did}`, {
        ucan: await removeAct(b, id, a.architect.did),
      }),
      {
        code: 'MESH_FORBIDDEN',
      },
    )
    await assert.rejects(
      a.api.request('DELETE', `/api/rooms/${id}/members/${victim}`, {
        ucan: await removeAct(a, id, b.architect.did),
      }),
      {
        code: 'MESH_UCAN_INVALID',
      },
    )
    await a.api.request('DELETE', `/api/rooms/${id}/members/${victim}`, {
      ucan: await removeAct(a, id, victim),
    })
    await assert.rejects(
      a.api.request('DELETE', `/api/rooms/${id}/members/${victim}`, { ucan: await removeAct(a, id, victim) }),
      {
        code: 'MESH_NOT_FOUND',
      },
    )
    for (const n of [a, b, c])
      await until(
        async () => (await n.node.rooms.load(id)).member(victim) === undefined,
        `removed at ${n.name}`,
      )

    // gamma's own node refuses the removed member's post.
    await assert.rejects(c.api.post(`/api/rooms/${id}/messages`, { body: 'gamma after' }), {
      code: 'MESH_FORBIDDEN',
    })
    // A hostile gamma writes it anyway, sealed by its key: alpha (given it directly) and beta (over
    // the link) refuse it. Two writes under two client ids: the hole a refusal leaves travels on and
    // makes a later copy of the same write a no-op where it arrives, neither held nor refused again.
    // One write given to both raced: alpha's hole reaching beta before gamma's copy did (driven here
    // by hand) left beta nothing to refuse.
    const key = (await loadKeyHistory(c.dataDir)).current
    const roomC = await c.node.rooms.load(id)
    const says = (body: string): MessageEntry => ({
      v: 1,
      room: id,
      author: victim,
      authorMesh: c.node.did,
      body,
      mentions: [],
      ts: Date.now(),
    })
    const client = () => 0x7000_0000 + Math.floor(Math.random() * 0x0fff_ffff)
    const [overLink, toAlpha] = [client(), client()]
    const update = boundWrite(roomC, key, [says('the removed member speaks')], overLink)
    const direct = boundWrite(roomC, key, [says('the removed member speaks to alpha')], toAlpha)
    const atAlpha = await (await a.node.rooms.load(id)).applyUpdate(direct, {
      kind: 'peer',
      meshDid: c.node.did,
    })
    // Refused as a whole, or as its only entry (a hole in its place): the message is not applied.
    const refusal = atAlpha.error ?? atAlpha.ok?.refused
    assert.equal((refusal?.details as { reason?: string } | undefined)?.reason, 'membership-ended')
    const knows = async (n: TestNode, clientID: number) =>
      Y.decodeStateVector(Y.encodeStateVector((await n.node.rooms.load(id)).doc)).has(clientID)
    await until(() => knows(b, toAlpha), 'the hole alpha leaves reaches beta')
    Y.applyUpdate(roomC.doc, update, 'hostile')
    await until(
      async () =>
        (await rejected(b)).some(
          (r) => (r.details as { reason?: string }).reason === 'membership-ended' && r.peer === c.node.did,
        ),
      'beta refuses the removed member’s write',
    )
    // Sentinel: alpha's later post reaches gamma through beta; the attack reached neither alpha nor beta.
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'alpha after the attack' })
    // (gamma's architect reads no more: gamma's replica is read in-process)
    const held = async (n: TestNode) =>
      [...(await n.node.rooms.load(id)).doc.getMap('messages').values()].map((m) => (m as MessageEntry).body)
    for (const n of [b, c])
      await until(async () => (await held(n)).includes('alpha after the attack'), `sentinel at ${n.name}`)
    for (const n of [a, b])
      for (const body of ['the removed member speaks', 'the removed member speaks to alpha'])
        assert.ok(!(await bodies(n, id)).includes(body))
  })
})
