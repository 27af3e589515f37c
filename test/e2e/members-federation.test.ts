/**
 * Issue 12, "Must show" first line, as separate processes: alpha enrols human carol and
 * agent bot; both sign in, join a room shared with beta and post; beta lists
 * `@carol:alpha` and `@bot:alpha` at tier 4 with their kind; beta's own agent (the
 * example agent, examples/mention-agent) joins the room through beta and answers a
 * mention; after alpha removes carol her sign-in is refused, and beta refuses a post
 * she makes through a replica of alpha that missed the removal (a sentinel posted
 * after the attack arrives; her post never does).
 *
 * Uses SPEC §8 as written: `mesh member add|remove` and `GET|POST /api/members`.
 */
import assert from 'node:assert/strict'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { startAgent } from '../../scripts/lib/mention-agent.ts'
import { waitFor } from '../../scripts/lib/processes.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { MeshError } from '../../src/errors.ts'
import { acceptRoom, connectCli, e2e, type FixedPortMesh, fixedPortMeshes } from '../fixtures/e2e.ts'

type Mesh = FixedPortMesh

type Msg = { id: string; author: string; authorDid: string; body: string; replyTo?: string }
type RoomMember = { did: string; name: string; tier: number; kind?: string }
type Enrolled = { did: string; kind: string; name: string; localId: string; role: string; tier: number }

/** The `MESH_…` code a call fails with (or 'ok'). */
async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call
    return 'ok'
  } catch (err) {
    return err instanceof MeshError ? err.code : String(err)
  }
}

describe('members and agents across meshes (SPEC §8)', () => {
  it('alpha enrols carol and bot; beta sees them at tier 4; beta’s agent answers; a removed carol is refused everywhere', async (t) => {
    const e = await e2e(t, 'mesh-members-e2e-', { logLevel: 'warn' })
    const { root, cli, keystore } = e
    const { mesh, start } = fixedPortMeshes(e, { architect: (m) => m.name.replace(/-stale$/, '') })
    const api = (m: Mesh) => m.api as HttpClient
    const alpha = await mesh('alpha')

    const beta = await mesh('beta')

    // alpha ↔ beta, and a room of alpha's shared with beta.
    await connectCli(e, alpha, beta)
    const room = (await cli<{ id: string }>(alpha, 'room', 'create', 'general')).id
    await cli(alpha, 'share', room, beta.did as string)
    // room lifecycle (SPEC §9): beta's architect accepts the invitation
    await acceptRoom(cli, beta, room)
    await waitFor(async () => {
      const rooms = await cli<Array<{ id: string; federated: boolean }>>(beta, 'rooms')
      return rooms.some((r) => r.id === room && r.federated)
    }, 'beta adopts the room')

    const members = (m: Mesh) =>
      api(m)
        .get<{ members: RoomMember[] }>(`/api/rooms/${room}/members`)
        .then((r) => r.members)
    const messages = (m: Mesh) =>
      api(m)
        .get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)
        .then((r) => r.messages)

    // alpha enrols human carol and agent bot (keys in the keystore, `mesh member add <key-name>`).
    const carolKey = await cli<{ did: string }>(undefined, 'key', 'new', 'carol')
    const botKey = await cli<{ did: string }>(undefined, 'key', 'new', 'bot')
    await cli(alpha, 'member', 'add', 'carol', '--kind', 'human', '--name', 'carol')
    await cli(alpha, 'member', 'add', 'bot', '--kind', 'agent', '--name', 'bot')
    const enrolled = (await api(alpha).get<{ members: Enrolled[] }>('/api/members')).members
    for (const [did, kind, name] of [
      [carolKey.did, 'human', 'carol'],
      [botKey.did, 'agent', 'bot'],
    ] as const) {
      const member = enrolled.find((m) => m.did === did)
      assert.ok(member, `${name} enrolled`)
      assert.equal(member.kind, kind)
      assert.equal(member.localId, name)
      const { vc } = await api(alpha).get<{ vc: string }>(`/api/members/${did}/credential`)
      assert.match(vc, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a VC-JWT')
    }

    // Both sign in at alpha, join the shared room and post.
    const carol = await signIn(alpha.proc?.http as string, await keystore.load('carol'))
    const bot = await signIn(alpha.proc?.http as string, await keystore.load('bot'))
    for (const [who, body] of [
      [carol, 'hello from carol'],
      [bot, 'hello from bot'],
    ] as const) {
      await who.post(`/api/rooms/${room}/join`, {})
      await who.post(`/api/rooms/${room}/messages`, { body })
    }

    // beta lists them as alpha's, at tier 4, with their kind, and has both posts.
    await waitFor(async () => {
      const atBeta = await members(beta)
      const carolAt = atBeta.find((m) => m.did === carolKey.did)
      const botAt = atBeta.find((m) => m.did === botKey.did)
      if (carolAt === undefined || botAt === undefined) return false
      assert.deepEqual([carolAt.name, carolAt.tier, carolAt.kind], ['@carol:alpha', 4, 'human'])
      assert.deepEqual([botAt.name, botAt.tier, botAt.kind], ['@bot:alpha', 4, 'agent'])
      return true
    }, 'beta lists @carol:alpha and @bot:alpha')
    await waitFor(async () => {
      const bodies = (await messages(beta)).map((m) => `${m.author} ${m.body}`)
      return bodies.includes('@carol:alpha hello from carol') && bodies.includes('@bot:alpha hello from bot')
    }, 'both posts at beta')

    // beta's own agent joins the room through beta and answers a mention made at alpha.
    await cli(undefined, 'key', 'new', 'helper')
    await cli(beta, 'member', 'add', 'helper', '--kind', 'agent', '--name', 'helper')
    const helper = startAgent(beta.proc?.http as string, room, keystore.pathOf('helper'))
    t.after(() => helper.stop('SIGKILL'))
    await helper.line(/^ready /)
    await waitFor(
      async () => (await members(alpha)).some((m) => m.name === '@helper:beta' && m.tier === 4),
      'alpha lists @helper:beta',
    )
    const ask = await carol.post<{ id: string }>(`/api/rooms/${room}/messages`, { body: '@helper:beta hi' })
    await helper.line(new RegExp(`^answered ${ask.id} `), 30_000)
    const answer = await waitFor(
      async () => (await messages(alpha)).find((m) => m.replyTo === ask.id),
      'the answer reaches alpha',
    )
    assert.equal(answer.author, '@helper:beta')
    assert.match(answer.body, /^@carol:alpha /)
    await helper.stop('SIGTERM')

    // A replica of alpha taken before the removal (alpha stopped cleanly, its data dir copied).
    await alpha.proc?.stop('SIGTERM')
    const stale: Mesh = { ...alpha, name: 'alpha-stale', dir: join(root, 'alpha-stale') }
    await cp(alpha.dir, stale.dir, { recursive: true })
    await start(alpha)

    // alpha removes carol: her old session and her sign-in are refused; beta drops her.
    await cli(alpha, 'member', 'remove', carolKey.did)
    assert.equal(await codeOf(carol.get('/api/me')), 'MESH_UNAUTHENTICATED')
    assert.equal(
      await codeOf(signIn(alpha.proc?.http as string, await keystore.load('carol'))),
      'MESH_FORBIDDEN',
    )
    assert.ok(
      !(await api(alpha).get<{ members: Enrolled[] }>('/api/members')).members.some(
        (m) => m.did === carolKey.did,
      ),
    )
    await waitFor(
      async () => !(await members(beta)).some((m) => m.did === carolKey.did),
      'beta learns that carol is no longer a member',
    )

    // The attack: alpha and beta stop; the stale replica (alpha's key, the room before the
    // removal) lets carol sign in and post; then beta comes back and syncs with it.
    await alpha.proc?.stop('SIGTERM')
    await beta.proc?.stop('SIGTERM')
    await start(stale)
    const staleCarol = await signIn(stale.proc?.http as string, await keystore.load('carol'))
    await staleCarol.post(`/api/rooms/${room}/messages`, { body: 'posted after my removal' })
    await start(beta)
    // Sentinel: the architect posts through the same replica after the attack.
    await api(stale).post(`/api/rooms/${room}/messages`, { body: 'sentinel after the attack' })
    await waitFor(
      async () => (await messages(beta)).some((m) => m.body === 'sentinel after the attack'),
      'the sentinel reaches beta',
      60_000,
    )
    assert.ok(!(await messages(beta)).some((m) => m.body === 'posted after my removal'))
    const rejected = await api(beta).get<{
      entries: Array<{ peer: string | null; code: string; details: object }>
    }>('/api/federation/rejected')
    const refusal = rejected.entries.find(
      (e) => e.peer === alpha.did && /^MESH_(UPDATE_REJECTED|FORBIDDEN)$/.test(e.code),
    )
    assert.ok(refusal, `beta logged the refusal: ${JSON.stringify(rejected.entries)}`)
  })
})
