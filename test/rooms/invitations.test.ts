import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { roomResourceOf } from '../../src/auth/authority/index.ts'
import type { RejectedEntry } from '../../src/connections/index.ts'
import { Ed25519KeyPair, signCanonical } from '../../src/identity/index.ts'
import { loadMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshLibp2p } from '../../src/p2p/index.ts'
import { decodeFrame, encodeFrame, MESH_ROOMS_PROTOCOL, type RoomFrame } from '../../src/rooms/index.ts'
import { signNotice } from '../../src/rooms/share-notice.ts'
import { MeshStore } from '../../src/store/index.ts'
import { shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { connect, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

type Invitation = { id: string; room: string; status: string; peer: string; name: string; endedBy?: string }
type Share = {
  peer: string
  direction: string
  status: string
  shared: boolean
  endedBy?: string
  endedAt?: string
}
type Msg = { id: string; body: string }

async function pair(t: TestContext) {
  const a = await startNode(t, 'alpha', { rooms: ROOMS })
  const b = await startNode(t, 'beta', { rooms: ROOMS })
  await connect(a, b)
  return { a, b }
}

async function room(n: TestNode, name: string): Promise<string> {
  return (await n.api.post<{ id: string }>('/api/rooms', { name })).id
}
async function share(from: TestNode, id: string, to: TestNode) {
  return from.api.post<Share>(`/api/rooms/${id}/share`, {
    mesh: to.node.did,
    ucan: await shareAct(from, id, to.node.did),
  })
}
async function invitations(n: TestNode): Promise<Invitation[]> {
  return (await n.api.get<{ invitations: Invitation[] }>('/api/rooms/invitations')).invitations
}
async function invitationOf(n: TestNode, id: string, status = 'pending'): Promise<Invitation> {
  return until(
    async () => (await invitations(n)).find((i) => i.room === id && i.status === status),
    `invitation ${status}`,
  )
}
async function answer(n: TestNode, inv: Invitation, what: 'accept' | 'decline') {
  return n.api.post<Invitation>(`/api/rooms/invitations/${inv.id}/${what}`, {
    ucan: await n.act(`room/${what}`, inv.peer, undefined, roomResourceOf(n.node.did, inv.room)),
  })
}
async function shareAt(n: TestNode, id: string): Promise<Share | undefined> {
  return (await n.api.get<{ shares: Share[] }>(`/api/rooms/${id}`)).shares[0]
}
async function bodies(n: TestNode, id: string): Promise<string[]> {
  return (await n.api.get<{ messages: Msg[] }>(`/api/rooms/${id}/messages?limit=200`)).messages.map(
    (m) => m.body,
  )
}
async function post(n: TestNode, id: string, body: string) {
  await n.api.post(`/api/rooms/${id}/messages`, { body })
}
async function rejected(n: TestNode): Promise<RejectedEntry[]> {
  return (await n.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries
}
/** A room shared from `a` and accepted by `b`, synced: later posts on it show that the link carries what came before. */
async function accepted(a: TestNode, b: TestNode, name: string): Promise<string> {
  const id = await room(a, name)
  await share(a, id, b)
  await answer(b, await invitationOf(b, id), 'accept')
  await until(async () => (await shareAt(a, id))?.status === 'accepted', 'alpha learns the answer')
  return id
}
/** Posts `body` at `from` in the sentinel room and waits until `to` has it: what was sent before has crossed. */
async function sentinel(from: TestNode, to: TestNode, id: string, body: string) {
  await post(from, id, body)
  await until(async () => (await bodies(to, id)).includes(body), `sentinel ${body}`)
}

describe('room invitations, unshare and leave (SPEC §9)', () => {
  it('a share is a pending invitation: nothing stored until accepted; declined, nothing crosses; accepted, it syncs', async (t) => {
    const { a, b } = await pair(t)
    const declined = await room(a, 'declined')
    await post(a, declined, 'secret before')
    const shared = await share(a, declined, b)
    assert.equal(shared.status, 'pending')
    assert.equal(shared.shared, false)
    const inv = await invitationOf(b, declined)
    assert.equal(inv.name, 'declined')
    assert.equal(inv.peer, a.node.did)
    // Nothing of the room is stored at beta but the invitation.
    await assert.rejects(b.api.get(`/api/rooms/${declined}`), { code: 'MESH_NOT_FOUND' })
    assert.ok(
      !(await b.api.get<{ rooms: { id: string }[] }>('/api/rooms')).rooms.some((r) => r.id === declined),
    )
    // An act for another ability, or by a chain for another room, is refused.
    await assert.rejects(
      b.api.post(`/api/rooms/invitations/${inv.id}/accept`, {
        ucan: await b.act('room/decline', inv.peer, undefined, roomResourceOf(b.node.did, declined)),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    await assert.rejects(
      b.api.post(`/api/rooms/invitations/${'0'.repeat(32)}/accept`, {
        ucan: await b.act('room/accept', inv.peer),
      }),
      { code: 'MESH_NOT_FOUND' },
    )
    // Hex, like room ids: never a leading `-` a command line would take for an option.
    assert.match(inv.id, /^[0-9a-f]{32}$/)
    await assert.rejects(b.api.post('/api/rooms/invitations/short/accept', { ucan: 'x' }), {
      code: 'MESH_BAD_REQUEST',
    })
    // Hostile input: an unknown field, an oversized or missing act, a spent act replayed.
    await assert.rejects(b.api.post(`/api/rooms/invitations/${inv.id}/accept`, { ucan: 'x', extra: 1 }), {
      code: 'MESH_BAD_REQUEST',
    })
    await assert.rejects(
      b.api.post(`/api/rooms/invitations/${inv.id}/accept`, { ucan: 'x'.repeat(20_000) }),
      {
        code: 'MESH_BAD_REQUEST',
      },
    )
    await assert.rejects(b.api.post(`/api/rooms/invitations/${inv.id}/decline`, {}), {
      code: 'MESH_BAD_REQUEST',
    })
    await assert.rejects(a.api.post(`/api/rooms/${declined}/unshare`, { mesh: 'not-a-did', ucan: 'x' }), {
      code: 'MESH_BAD_REQUEST',
    })
    const decline = await b.act('room/decline', inv.peer, undefined, roomResourceOf(b.node.did, declined))
    const no = await b.api.post<Invitation>(`/api/rooms/invitations/${inv.id}/decline`, { ucan: decline })
    assert.equal(no.status, 'declined')
    await until(async () => (await shareAt(a, declined))?.status === 'declined', 'alpha learns the decline')
    await assert.rejects(answer(b, inv, 'accept'), { code: 'MESH_CONFLICT' })

    // A second room, accepted: it syncs both ways; the declined one never arrives.
    const second = await room(a, 'second')
    await share(a, second, b)
    const secondInv = await invitationOf(b, second)
    await assert.rejects(
      b.api.post(`/api/rooms/invitations/${secondInv.id}/decline`, { ucan: decline }),
      (err: { code?: string }) => err.code === 'MESH_UCAN_INVALID' || err.code === 'MESH_REPLAY',
    )
    assert.equal((await invitationOf(b, second)).status, 'pending')
    const yes = await accepted(a, b, 'accepted')
    await post(a, declined, 'secret after')
    await sentinel(a, b, yes, 'alpha after the decline')
    await sentinel(b, a, yes, 'beta answers')
    await assert.rejects(b.api.get(`/api/rooms/${declined}`), { code: 'MESH_NOT_FOUND' })
    assert.equal((await invitations(b)).find((i) => i.room === declined)?.status, 'declined')
    const view = await shareAt(b, yes)
    assert.equal(view?.status, 'accepted')
    assert.equal(view?.shared, true)
  })

  it('after unshare or leave nothing of the room crosses either way, each side keeps and marks what it has', async (t) => {
    const { a, b } = await pair(t)
    const sentinelRoom = await accepted(a, b, 'sentinel')
    const unshared = await accepted(a, b, 'unshared')
    const left = await accepted(a, b, 'left')
    for (const id of [unshared, left]) {
      await sentinel(a, b, id, `before ${id}`)
      await sentinel(b, a, id, `beta before ${id}`)
    }
    // Unshare needs the home mesh's act naming the peer; leave the receiver's.
    await assert.rejects(
      a.api.post(`/api/rooms/${unshared}/unshare`, {
        mesh: b.node.did,
        ucan: await a.act('room/unshare', a.node.did),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    const ended = await a.api.post<Share>(`/api/rooms/${unshared}/unshare`, {
      mesh: b.node.did,
      ucan: await a.act('room/unshare', b.node.did, undefined, roomResourceOf(a.node.did, unshared)),
    })
    assert.deepEqual([ended.shared, ended.endedBy], [false, 'unshare'])
    const gone = await b.api.post<{ shares: Share[] }>(`/api/rooms/${left}/leave`, {
      ucan: await b.act('room/leave', undefined, undefined, roomResourceOf(b.node.did, left)),
    })
    assert.deepEqual(
      gone.shares.map((s) => [s.shared, s.endedBy]),
      [[false, 'leave']],
    )
    await until(async () => (await shareAt(b, unshared))?.endedBy === 'unshare', 'beta learns the unshare')
    await until(async () => (await shareAt(a, left))?.endedBy === 'leave', 'alpha learns the leave')
    for (const id of [unshared, left]) {
      await post(a, id, `alpha after ${id}`)
      await post(b, id, `beta after ${id}`)
    }
    await sentinel(a, b, sentinelRoom, 'alpha sentinel')
    await sentinel(b, a, sentinelRoom, 'beta sentinel')
    for (const id of [unshared, left]) {
      // Each keeps what it had, and only its own later post.
      assert.deepEqual(
        (await bodies(a, id)).sort(),
        [`alpha after ${id}`, `before ${id}`, `beta before ${id}`].sort(),
      )
      assert.deepEqual(
        (await bodies(b, id)).sort(),
        [`before ${id}`, `beta after ${id}`, `beta before ${id}`].sort(),
      )
    }
    // Ending twice is a conflict; leaving a room of its own is not found.
    await assert.rejects(
      a.api.post(`/api/rooms/${unshared}/unshare`, {
        mesh: b.node.did,
        ucan: await a.act('room/unshare', b.node.did, undefined, roomResourceOf(a.node.did, unshared)),
      }),
      { code: 'MESH_CONFLICT' },
    )
    await assert.rejects(
      a.api.post(`/api/rooms/${sentinelRoom}/leave`, {
        ucan: await a.act('room/leave', undefined, undefined, roomResourceOf(a.node.did, sentinelRoom)),
      }),
      { code: 'MESH_NOT_FOUND' },
    )
    // The ended shares stay ended after a restart of both.
    await a.restart({ rooms: ROOMS })
    await b.restart({ rooms: ROOMS })
    await post(a, unshared, 'alpha after restart')
    await sentinel(a, b, sentinelRoom, 'alpha sentinel after restart')
    assert.ok(!(await bodies(b, unshared)).includes('alpha after restart'))
    assert.equal((await shareAt(b, unshared))?.endedBy, 'unshare')
    // Shared anew, it is a new invitation; accepted, both sides catch up on what each wrote meanwhile.
    const again = await share(a, unshared, b)
    assert.deepEqual([again.status, again.shared], ['pending', false])
    await answer(b, await invitationOf(b, unshared), 'accept')
    await until(
      async () => (await bodies(b, unshared)).includes('alpha after restart'),
      'alpha’s posts cross again',
    )
    await until(
      async () => (await bodies(a, unshared)).includes(`beta after ${unshared}`),
      'beta’s posts cross again',
    )
    assert.equal((await shareAt(a, unshared))?.shared, true)
  })

  it('policy autoAcceptRooms accepts a share at once; a stored policy without it reads false', async (t) => {
    const { a, b } = await pair(t)
    const policy = await b.api.get<Record<string, unknown>>('/api/federation/policy')
    assert.equal(policy.autoAcceptRooms, false)
    const { autoAcceptRooms: _drop, ...older } = policy
    await b.api.put('/api/federation/policy', older)
    assert.equal((await b.api.get<Record<string, unknown>>('/api/federation/policy')).autoAcceptRooms, false)
    await b.api.put('/api/federation/policy', { ...older, autoAcceptRooms: true })
    const id = await room(a, 'auto')
    await post(a, id, 'hello auto')
    await share(a, id, b)
    await until(
      async () => (await bodies(b, id).catch(() => [] as string[])).includes('hello auto'),
      'synced at once',
    )
    const inv = await invitationOf(b, id, 'accepted')
    assert.equal((inv as Invitation & { answeredBy?: string }).answeredBy, 'policy')
    await until(async () => (await shareAt(a, id))?.status === 'accepted', 'alpha learns')
  })

  it('hostile notices on the wire: forged, tampered, malformed, oversized, from the future, not-shared — refused; an honest one applied', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const m = await startNode(t, 'mallory', { rooms: ROOMS })
    await connect(m, a)
    const id = await room(a, 'pending at mallory')
    const notShared = await room(a, 'never shared')
    await share(a, id, m)
    await invitationOf(m, id)
    // Mallory's node steps aside; a bare host with its key sends notices by hand.
    await m.stop()
    const store = new MeshStore({ path: join(m.dataDir, STORE_DIR) })
    await store.open()
    const { key } = await loadMesh(store, m.dataDir)
    await store.close()
    const host = await createMeshLibp2p({ key })
    t.after(() => host.stop())
    const lp = lpStream(await host.dialProtocol(multiaddr(a.addr()), MESH_ROOMS_PROTOCOL), {
      maxDataLength: 1024 * 1024,
    })
    const frames: RoomFrame[] = []
    void (async () => {
      for (;;) frames.push(decodeFrame((await lp.read()).subarray()))
    })().catch(() => {})
    const send = (roomId: string, json: string) =>
      lp.write(encodeFrame({ room: roomId, type: 'notice', json }))
    const notice = (kind: 'accept' | 'leave' | 'unshare', roomId = id, at = Date.now(), signer = key) =>
      signNotice(signer, { kind, room: roomId, to: a.node.did, at })
    const refusedWith = async (roomId: string, code: string) => {
      const frame = await until(
        () =>
          frames.find(
            (f) => f.type === 'refused' && f.room === roomId && (f as { code: string }).code === code,
          ),
        `${code} for ${roomId}`,
      )
      frames.splice(frames.indexOf(frame), 1)
      await sleep(1100) // one refusal per peer and reason is reported per second
    }
    // Another key's notice, a tampered one, garbage, an oversized one, one from the future.
    await send(id, JSON.stringify(notice('accept', id, Date.now(), new Ed25519KeyPair(Buffer.alloc(32, 78)))))
    await refusedWith(id, 'MESH_FORBIDDEN')
    await send(id, JSON.stringify({ ...notice('accept'), kind: 'decline' }))
    await refusedWith(id, 'MESH_SIGNATURE_MISMATCH')
    await send(id, '{"v":1')
    await refusedWith(id, 'MESH_BAD_REQUEST')
    await send(id, JSON.stringify({ ...notice('accept'), pad: 'x'.repeat(4096) }))
    await refusedWith(id, 'MESH_TOO_LARGE')
    await send(id, JSON.stringify(notice('accept', id, Date.now() + 3_600_000)))
    await refusedWith(id, 'MESH_CLOCK_SKEW')
    // Honest notices about a room not shared with mallory, or in the wrong role (mallory is no home mesh).
    await send(notShared, JSON.stringify(notice('leave', notShared)))
    await refusedWith(notShared, 'MESH_UPDATE_REJECTED')
    await send(id, JSON.stringify(notice('unshare')))
    await refusedWith(id, 'MESH_UPDATE_REJECTED')
    assert.equal((await shareAt(a, id))?.status, 'pending')
    const reasons = (await rejected(a)).map((r) => (r.details as { reason?: string }).reason)
    assert.ok(reasons.includes('not-shared'), reasons.join())
    // Until the invitation is answered alpha sends nothing of the room, only the share.
    await post(a, id, 'not yet for mallory')
    const content = (f: RoomFrame) =>
      f.room === id && ['step1', 'step2', 'update', 'backfill', 'awareness'].includes(f.type)
    assert.ok(frames.some((f) => f.type === 'share' && f.room === id))
    assert.ok(!frames.some(content), 'no content of a pending room')
    // Sentinel: mallory's honest answer, then its leave, apply; after the accept alpha asks for the room.
    await send(id, JSON.stringify(notice('accept')))
    await until(async () => (await shareAt(a, id))?.status === 'accepted', 'the accept applies')
    await until(() => frames.some((f) => f.room === id && f.type === 'step1'), 'alpha asks for the room')
    await send(id, JSON.stringify(notice('leave')))
    await until(async () => (await shareAt(a, id))?.endedBy === 'leave', 'the leave applies')
    // A replayed accept after the end changes nothing.
    await send(id, JSON.stringify(notice('accept')))
    await send(notShared, JSON.stringify({ v: 1, sig: signCanonical(key, {}) }))
    await refusedWith(notShared, 'MESH_BAD_REQUEST')
    assert.deepEqual([(await shareAt(a, id))?.status, (await shareAt(a, id))?.shared], ['accepted', false])
  })
})
