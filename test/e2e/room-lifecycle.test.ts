import assert from 'node:assert/strict'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import {
  acceptRoom,
  connectCli,
  e2e,
  type FixedPortMesh,
  fixedPortMeshes,
  rejectedAt,
} from '../fixtures/e2e.ts'

type Mesh = FixedPortMesh
type Share = { peer: string; status: string; shared: boolean; endedBy?: string }
type Invitation = { id: string; room: string; status: string }

/**
 * Issue 13, must show (room lifecycle, SPEC §9), across processes and driven by the CLI:
 * beta declines alpha's room and receives no entry of it; accepts a second one and
 * syncs; alpha unshares, and later posts cross neither way; beta leaves another room
 * with the same effect; a removed foreign member's post is refused on all three meshes
 * of an A–B–C room (sentinel after the attack).
 */
describe('room lifecycle across processes (SPEC §9)', () => {
  it('decline, accept, unshare, leave, and a removed foreign member refused on all three meshes', async (t) => {
    const e = await e2e(t, 'mesh-lifecycle-e2e-', { logLevel: 'warn' })
    const { root, cli, run } = e
    const { mesh, start } = fixedPortMeshes(e)
    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta', 'gamma']) meshes.push(await mesh(name))
    const [alpha, beta, gamma] = meshes as [Mesh, Mesh, Mesh]
    const api = (m: Mesh) => m.api as HttpClient
    const connect = (x: Mesh, y: Mesh) => connectCli(e, x, y)
    const room = async (m: Mesh, name: string) => (await cli<{ id: string }>(m, 'room', 'create', name)).id
    const bodies = async (m: Mesh, id: string) =>
      (
        await api(m).get<{ messages: Array<{ body: string }> }>(`/api/rooms/${id}/messages?limit=200`)
      ).messages.map((x) => x.body)
    const shareOf = async (m: Mesh, id: string) =>
      (await api(m).get<{ shares: Share[] }>(`/api/rooms/${id}`)).shares[0]
    const arrives = (m: Mesh, id: string, body: string) =>
      waitFor(async () => (await bodies(m, id)).includes(body), `${body} at ${m.name}`)
    const post = (m: Mesh, id: string, body: string) => cli(m, 'post', id, body)
    const shared = async (id: string) => {
      await cli(alpha, 'share', id, beta.did as string)
      await acceptRoom(cli, beta, id)
      await waitFor(async () => (await shareOf(alpha, id))?.status === 'accepted', 'alpha learns the accept')
    }

    await connect(alpha, beta)
    await connect(beta, gamma)

    // 1. beta declines a room: nothing of it is stored at beta, before or after.
    const declined = await room(alpha, 'declined')
    await post(alpha, declined, 'declined 1')
    await cli(alpha, 'share', declined, beta.did as string)
    const invitation = await waitFor(
      async () => (await cli<Invitation[]>(beta, 'invitations')).find((i) => i.room === declined),
      'the invitation at beta',
    )
    assert.equal(invitation.status, 'pending')
    await cli(beta, 'invitation', 'decline', invitation.id)
    await waitFor(
      async () => (await shareOf(alpha, declined))?.status === 'declined',
      'alpha learns the decline',
    )
    await post(alpha, declined, 'declined 2')

    // 2. beta accepts a second room: it syncs both ways.
    const accepted = await room(alpha, 'accepted')
    await post(alpha, accepted, 'accepted before the share')
    await shared(accepted)
    await arrives(beta, accepted, 'accepted before the share')
    await post(beta, accepted, 'beta in accepted')
    await arrives(alpha, accepted, 'beta in accepted')
    const gone = await run(beta, 'messages', declined)
    assert.equal(gone.out.error?.code, 'MESH_NOT_FOUND')
    assert.equal(
      (await cli<Invitation[]>(beta, 'invitations')).find((i) => i.room === declined)?.status,
      'declined',
    )

    // 3. alpha unshares one room, beta leaves another: later posts cross neither way.
    const sentinel = await room(alpha, 'sentinel')
    const left = await room(alpha, 'left')
    await shared(sentinel)
    await shared(left)
    await post(alpha, left, 'left before')
    await arrives(beta, left, 'left before')
    await cli(alpha, 'unshare', accepted, beta.did as string)
    await cli(beta, 'leave', left)
    await waitFor(
      async () => (await shareOf(beta, accepted))?.endedBy === 'unshare',
      'beta learns the unshare',
    )
    await waitFor(async () => (await shareOf(alpha, left))?.endedBy === 'leave', 'alpha learns the leave')
    for (const id of [accepted, left]) {
      await post(alpha, id, `alpha after the end of ${id}`)
      await post(beta, id, `beta after the end of ${id}`)
    }
    await post(alpha, sentinel, 'sentinel from alpha')
    await post(beta, sentinel, 'sentinel from beta')
    await arrives(beta, sentinel, 'sentinel from alpha')
    await arrives(alpha, sentinel, 'sentinel from beta')
    for (const id of [accepted, left]) {
      assert.ok(!(await bodies(beta, id)).includes(`alpha after the end of ${id}`))
      assert.ok(!(await bodies(alpha, id)).includes(`beta after the end of ${id}`))
      // Each side keeps what it held, marked as no longer shared.
      for (const m of [alpha, beta]) assert.equal((await shareOf(m, id))?.shared, false)
    }
    assert.ok((await bodies(beta, accepted)).includes('accepted before the share'))
    const declinedAtBeta = await run(beta, 'messages', declined)
    assert.equal(declinedAtBeta.out.error?.code, 'MESH_NOT_FOUND')

    // 4. An A–B–C room: alpha removes gamma's architect, a foreign member.
    const abc = await room(alpha, 'abc')
    await shared(abc)
    await cli(beta, 'share', abc, gamma.did as string)
    await acceptRoom(cli, gamma, abc)
    const victim = (await api(gamma).get<{ did: string }>('/api/me')).did
    await waitFor(
      async () =>
        (await api(alpha).get<{ members: Array<{ did: string }> }>(`/api/rooms/${abc}/members`)).members.some(
          (m) => m.did === victim,
        ),
      'gamma’s architect is a member at alpha',
    )
    await post(gamma, abc, 'gamma before')
    await arrives(alpha, abc, 'gamma before')
    // A copy of gamma's data taken now will miss the removal.
    await gamma.proc?.stop('SIGTERM')
    const staleDir = join(root, 'gamma-stale')
    await cp(gamma.dir, staleDir, { recursive: true })
    await start(gamma)
    await cli(alpha, 'room', 'remove', abc, victim)
    const membersAt = async (m: Mesh) =>
      (await api(m).get<{ members: Array<{ did: string }> }>(`/api/rooms/${abc}/members`)).members.map(
        (x) => x.did,
      )
    await waitFor(async () => !(await membersAt(beta)).includes(victim), 'the removal reaches beta')
    await waitFor(
      async () => (await run(gamma, 'members', abc)).out.error?.code === 'MESH_FORBIDDEN',
      'the removal reaches gamma',
    )
    // gamma refuses the removed member's post.
    const refusedAtGamma = await run(gamma, 'post', abc, 'after my removal')
    assert.equal(refusedAtGamma.out.error?.code, 'MESH_FORBIDDEN')
    // The stale replica in gamma's place, beta down meanwhile: the removed member posts there.
    await gamma.proc?.stop('SIGTERM')
    await beta.proc?.stop('SIGTERM')
    await start(gamma, staleDir)
    await api(gamma).post(`/api/rooms/${abc}/messages`, { body: 'after my removal' })
    await start(beta)
    const refused = await rejectedAt(
      beta,
      (e) => e.details.reason === 'membership-ended',
      'beta refuses the late post',
    )
    assert.equal(refused.code, 'MESH_UPDATE_REJECTED')
    // Sentinel: alpha's post after the attack crosses to beta; the late post reached neither.
    await post(alpha, abc, 'sentinel after the attack')
    await arrives(beta, abc, 'sentinel after the attack')
    for (const m of [alpha, beta]) assert.ok(!(await bodies(m, abc)).includes('after my removal'))
  })
})
