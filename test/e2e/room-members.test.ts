import assert from 'node:assert/strict'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import { MemberBook } from '../../src/auth/members.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { loadMesh, withMeshStore } from '../../src/mesh-info.ts'
import { RoomManager } from '../../src/rooms/index.ts'
import {
  acceptRoom,
  connectCli,
  e2e,
  type FixedPortMesh,
  fixedPortMeshes,
  rejectedAt,
} from '../fixtures/e2e.ts'

type Mesh = FixedPortMesh
type Msg = { id: string; author: string; body: string }

const carol = new Ed25519KeyPair(Buffer.alloc(32, 51))

/**
 * Until helper "members"'s routes land, enrolment and removal are done offline on the
 * stopped mesh's data dir, with the node's own classes (MemberBook, RoomManager).
 */
async function offline<T>(m: Mesh, fn: (books: { members: MemberBook; rooms: RoomManager }) => Promise<T>) {
  return withMeshStore(m.dir, async (store) => {
    const { key, info } = await loadMesh(store, m.dir)
    const members = new MemberBook({ store, architectDid: info.architectDid })
    const rooms = new RoomManager({
      store,
      key: () => key,
      meshName: info.name,
      localPrincipal: (did) => members.localPrincipal(did),
    })
    await rooms.start()
    try {
      return await fn({ members, rooms })
    } finally {
      await rooms.stop()
    }
  })
}

describe('members everywhere across processes', () => {
  it('beta refuses a post by a removed member of alpha made through a replica that missed the removal; sentinel after', async (t) => {
    const e = await e2e(t, 'mesh-room-members-e2e-', { logLevel: 'warn' })
    const { root, cli } = e
    const { mesh, start } = fixedPortMeshes(e)
    const alpha = await mesh('alpha', { start: false })
    const beta = await mesh('beta', { start: false })
    await offline(alpha, ({ members }) =>
      members.enroll({ did: carol.did, kind: 'human', role: 'human', name: 'carol' }),
    )
    await start(alpha)
    await start(beta)
    const api = (m: Mesh) => m.api as HttpClient
    await connectCli(e, alpha, beta)

    const room = await cli<{ id: string }>(alpha, 'room', 'create', 'shared')
    await cli(alpha, 'share', room.id, beta.did as string)
    // room lifecycle (SPEC §9): beta's architect accepts the invitation
    await acceptRoom(cli, beta, room.id)
    const messagesAt = async (m: Mesh) =>
      (await api(m).get<{ messages: Msg[] }>(`/api/rooms/${room.id}/messages?limit=200`)).messages
    const asCarol = await signIn(alpha.proc?.http as string, carol)
    await asCarol.post(`/api/rooms/${room.id}/join`, {})
    const first = await asCarol.post<{ id: string }>(`/api/rooms/${room.id}/messages`, { body: 'carol here' })
    const seen = await waitFor(
      async () => (await messagesAt(beta)).find((m) => m.id === first.id),
      'carol’s post at beta',
    )
    assert.equal(seen.author, '@carol:alpha')

    // A copy of alpha's data taken now will miss the removal.
    await alpha.proc?.stop('SIGTERM')
    const staleDir = join(root, 'alpha-stale')
    await cp(alpha.dir, staleDir, { recursive: true })
    // Alpha removes carol (offline here; through DELETE /api/members once it exists).
    assert.deepEqual(await offline(alpha, ({ rooms }) => rooms.endMemberships(carol.did)), [room.id])
    await start(alpha)
    const memberDids = async () =>
      (await api(beta).get<{ members: Array<{ did: string }> }>(`/api/rooms/${room.id}/members`)).members.map(
        (m) => m.did,
      )
    await waitFor(async () => !(await memberDids()).includes(carol.did), 'the ending reaches beta')

    // The stale replica in alpha's place, beta down meanwhile: carol signs in there and posts.
    await alpha.proc?.stop('SIGTERM')
    await beta.proc?.stop('SIGTERM')
    await start(alpha, staleDir)
    const staleCarol = await signIn(alpha.proc?.http as string, carol)
    const late = await staleCarol.post<{ id: string }>(`/api/rooms/${room.id}/messages`, {
      body: 'after my removal',
    })
    await start(beta)
    const refused = await rejectedAt(
      beta,
      (e) => e.details.reason === 'membership-ended',
      'beta refuses the late post',
    )
    assert.equal(refused.code, 'MESH_UPDATE_REJECTED')
    // The stale replica takes the ending from beta and shows the late post as redacted.
    await waitFor(
      async () => (await messagesAt(alpha)).find((m) => m.id === late.id && m.body === ''),
      'the late post hidden at the stale replica',
    )
    // Sentinel: a legitimate post after the attack goes through.
    const sentinel = await api(beta).post<{ id: string }>(`/api/rooms/${room.id}/messages`, {
      body: 'sentinel',
    })
    await waitFor(
      async () => (await messagesAt(alpha)).some((m) => m.id === sentinel.id),
      'sentinel at alpha',
    )
    assert.ok(!(await messagesAt(beta)).some((m) => m.id === late.id), 'the late post never reached beta')
  })
})
