import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import type * as API from '@ucanto/interface'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { issueDelegation, roomResourceOf } from '../../src/auth/authority/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair, MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import { contentId, guestName, type MessageEntry } from '../../src/rooms/index.ts'
import { rootOf } from '../auth/chain-acts.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { waitFor } from '../p2p/nodes.ts'

type Refusal = { code: string; details: Record<string, unknown> }
const refused = (code: string, reason?: string) => (err: Refusal) => {
  assert.equal(err.code, code, JSON.stringify(err))
  if (reason !== undefined) assert.equal(err.details.reason, reason, JSON.stringify(err))
  return true
}

type Page = { messages: Array<{ id: string; body: string; author: string; authorDid: string }> }
type Member = { did: string; name: string; tier: number; role: string }
type Session = { token: string; expiresAt: string; did: string; room: string; can: string[] }

/** The architect's delegation of `cans` on `room` to `audience`, proved by the root delegation. */
async function chain(
  node: TestNode,
  audience: string,
  room: string,
  cans: string[],
  options: { ttlSeconds?: number; issuer?: Ed25519KeyPair; proofs?: API.Delegation[] } = {},
): Promise<API.Delegation> {
  const delegation = await issueDelegation({
    issuer: options.issuer ?? node.architect,
    audience,
    capabilities: cans.map((can) => ({ can, with: roomResourceOf(node.node.did, room) })),
    expiration: Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? 3600),
    proofs: options.proofs ?? [await rootOf(node)],
  })
  return delegation
}

function invoke(
  node: TestNode,
  agent: Ed25519KeyPair,
  can: string,
  room: string,
  nb: Record<string, unknown>,
  proofs: API.Delegation[],
): Promise<string> {
  return invocationToken(agent, node.node.did, { can, with: roomResourceOf(node.node.did, room), nb }, proofs)
}

async function setup(t: TestContext) {
  const a = await startNode(t, 'alpha')
  const { id: room } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
  const { id: other } = await a.api.post<{ id: string }>('/api/rooms', { name: 'other' })
  await a.api.post(`/api/rooms/${room}/messages`, { body: 'welcome' })
  const agent = Ed25519KeyPair.generate()
  const anon = new HttpClient(a.node.httpUrl)
  return { a, room, other, agent, anon }
}

/** The invitee an invitation names (its nb.invitee). */
async function didOfAct(token: string): Promise<string> {
  const { decodeToken, viewOf } = await import('../../src/auth/authority/index.ts')
  const decoded = decodeToken(token)
  if (decoded.ok === undefined) throw new Error('bad token')
  return String((viewOf(decoded.ok).capabilities[0] as { nb: { invitee: string } }).nb.invitee)
}

type Setup = Awaited<ReturnType<typeof setup>>

/**
 * A test on a fresh alpha, stopped by the test itself: the fixtures' `t.after` hooks run
 * in order, and the temp dir is removed before the node's own stop (a live store may
 * still be writing then).
 */
function alphaTest(name: string, body: (ctx: Setup, t: TestContext) => Promise<void>): void {
  it(name, async (t) => {
    const ctx = await setup(t)
    try {
      await body(ctx, t)
    } finally {
      await ctx.a.stop()
    }
  })
}

describe('agents in foreign rooms: a chain on one room (SPEC §8, way 2)', () => {
  alphaTest(
    'a foreign agent with a chain posts to and reads one room through POST /api/invoke, at tier 4',
    async ({ a, room, agent, anon }) => {
      const grant = await chain(a, agent.did, room, ['room/read', 'room/post'])
      const posted = await anon.post<{ room: string; ability: string; tier: number; result: { id: string } }>(
        '/api/invoke',
        { ucan: await invoke(a, agent, 'room/post', room, { body: 'hello from afar' }, [grant]) },
      )
      assert.equal(posted.room, room)
      assert.equal(posted.ability, 'room/post')
      assert.equal(posted.tier, 4)
      const read = await anon.post<{ result: Page }>('/api/invoke', {
        ucan: await invoke(a, agent, 'room/read', room, { limit: 10 }, [grant]),
      })
      assert.deepEqual(
        read.result.messages.map((m) => m.body),
        ['welcome', 'hello from afar'],
      )
      const mine = read.result.messages[1]
      assert.equal(mine?.authorDid, agent.did)
      assert.equal(mine?.id, posted.result.id)
      // The room lists it as a tier 4 guest this mesh vouches for.
      const { members } = await a.api.get<{ members: Member[] }>(`/api/rooms/${room}/members`)
      const guest = members.find((m) => m.did === agent.did)
      assert.equal(guest?.tier, 4)
      assert.equal(guest?.role, 'member')
      assert.equal(guest?.name, `@${guestName(agent.did)}`)
      // agent/invoke is unchanged beside it.
      const echo = await a.api.get<{ agents: Array<{ resource: string }> }>('/.well-known/mesh-manifest.json')
      assert.ok(echo.agents.length > 0)
    },
  )

  alphaTest(
    'hostile: no chain, expired, widened, not rooted here, replayed, oversized, not a room',
    async ({ a, room, other, agent, anon }) => {
      const post = async (ucan: string) => anon.post('/api/invoke', { ucan })
      // No chain at all.
      await assert.rejects(
        post(await invoke(a, agent, 'room/post', room, { body: 'x' }, [])),
        refused('MESH_UCAN_INVALID'),
      )
      // Expired (beyond the ±60 s skew).
      const expired = await chain(a, agent.did, room, ['room/post'], { ttlSeconds: -300 })
      await assert.rejects(
        post(await invoke(a, agent, 'room/post', room, { body: 'x' }, [expired])),
        refused('MESH_UCAN_INVALID', 'expired'),
      )
      // Widened: the chain is on `room`, the invocation on `other`; and an ability it does not grant.
      const readOnly = await chain(a, agent.did, room, ['room/read'])
      await assert.rejects(
        post(await invoke(a, agent, 'room/read', other, {}, [readOnly])),
        refused('MESH_FORBIDDEN'),
      )
      await assert.rejects(
        post(await invoke(a, agent, 'room/post', room, { body: 'x' }, [readOnly])),
        refused('MESH_FORBIDDEN'),
      )
      // A chain rooted in another key posing as a mesh.
      const impostor = Ed25519KeyPair.generate()
      const fake = await chain(a, agent.did, room, ['room/post'], { issuer: impostor, proofs: [] })
      await assert.rejects(
        post(await invoke(a, agent, 'room/post', room, { body: 'x' }, [fake])),
        refused('MESH_UCAN_INVALID'),
      )
      // A chain no human signed: the mesh key delegates straight to the agent.
      const meshKey = await readKeyFile(join(a.dataDir, MESH_KEY_FILE))
      const keyOnly = await chain(a, agent.did, room, ['room/post'], { issuer: meshKey, proofs: [] })
      await assert.rejects(
        post(await invoke(a, agent, 'room/post', room, { body: 'x' }, [keyOnly])),
        refused('MESH_NOT_HUMAN_SIGNED'),
      )
      // Replayed.
      const good = await chain(a, agent.did, room, ['room/post', 'room/read'])
      const once = await invoke(a, agent, 'room/post', room, { body: 'once' }, [good])
      await post(once)
      await assert.rejects(post(once), refused('MESH_REPLAY'))
      // Oversized body (refused before any signature is checked).
      await assert.rejects(
        post(await invoke(a, agent, 'room/post', room, { body: 'x'.repeat(8 * 1024 + 1) }, [good])),
        refused('MESH_TOO_LARGE'),
      )
      await assert.rejects(
        post(await invoke(a, agent, 'room/read', room, { limit: 10_000 }, [good])),
        refused('MESH_BAD_REQUEST'),
      )
      // A resource that is not a room of this mesh.
      const onMesh = await invocationToken(
        agent,
        a.node.did,
        { can: 'room/post', with: a.node.did, nb: { body: 'x' } },
        [good],
      )
      await assert.rejects(post(onMesh), refused('MESH_FORBIDDEN', 'resource'))
      // Another principal holding the agent's chain cannot use it (alignment).
      const thief = Ed25519KeyPair.generate()
      await assert.rejects(
        post(await invoke(a, thief, 'room/post', room, { body: 'x' }, [good])),
        refused('MESH_UCAN_INVALID'),
      )
      const page = await a.api.get<Page>(`/api/rooms/${room}/messages`)
      assert.deepEqual(
        page.messages.map((m) => m.body),
        ['welcome', 'once'],
      )
    },
  )

  alphaTest(
    'a capability session reaches only its room, by what the chain grants, until the chain ends or is revoked',
    async ({ a, room, other, agent }) => {
      const grant = await chain(a, agent.did, room, ['room/read', 'room/post'])
      const open = async (ucan: string) =>
        new HttpClient(a.node.httpUrl).post<Session>('/api/session/ucan', { ucan })
      const session = await open(await invoke(a, agent, 'room/read', room, {}, [grant]))
      assert.deepEqual(session.can, ['room/read', 'room/post'])
      assert.equal(session.room, room)
      assert.ok(Date.parse(session.expiresAt) <= (grant.expiration as number) * 1000)
      const cap = new HttpClient(a.node.httpUrl, session.token)
      await cap.post(`/api/rooms/${room}/messages`, { body: 'by session' })
      const page = await cap.get<Page>(`/api/rooms/${room}/messages`)
      assert.deepEqual(
        page.messages.map((m) => m.body),
        ['welcome', 'by session'],
      )
      assert.equal(page.messages[1]?.authorDid, agent.did)
      // Another room, any other route: refused.
      await assert.rejects(cap.get(`/api/rooms/${other}/messages`), refused('MESH_FORBIDDEN', 'room'))
      await assert.rejects(cap.post(`/api/rooms/${other}/yjs-ticket`, {}), refused('MESH_FORBIDDEN', 'room'))
      await assert.rejects(cap.get('/api/connections'), refused('MESH_FORBIDDEN', 'capability-session'))
      await assert.rejects(cap.get('/api/me'), refused('MESH_FORBIDDEN', 'capability-session'))
      await assert.rejects(
        cap.post('/api/rooms', { name: 'mine' }),
        refused('MESH_FORBIDDEN', 'capability-session'),
      )
      await assert.rejects(cap.get('/api/rooms'), refused('MESH_FORBIDDEN', 'capability-session'))
      // A forged token of the same form.
      await assert.rejects(
        new HttpClient(a.node.httpUrl, `cap_${'A'.repeat(43)}`).get(`/api/rooms/${room}/messages`),
        refused('MESH_UNAUTHENTICATED'),
      )
      // The session-opening invocation is single use.
      const again = await invoke(a, agent, 'room/post', room, {}, [grant])
      await open(again)
      await assert.rejects(open(again), refused('MESH_REPLAY'))
      // Revoking the chain ends the session at once.
      const revoke = await invocationToken(
        a.architect,
        a.node.did,
        { can: 'ucan/revoke', with: a.node.did, nb: { ucan: grant.cid, reason: 'done' } },
        [await rootOf(a)],
      )
      await a.node.authority.revoke(revoke)
      await assert.rejects(cap.get(`/api/rooms/${room}/messages`), refused('MESH_UCAN_INVALID', 'revoked'))
      await assert.rejects(
        open(await invoke(a, agent, 'room/read', room, {}, [grant])),
        refused('MESH_UCAN_INVALID'),
      )
    },
  )

  alphaTest(
    'a read-only chain opens a read-only session; a session ends with its chain',
    async ({ a, room, agent }) => {
      const readOnly = await chain(a, agent.did, room, ['room/read'])
      const s = await new HttpClient(a.node.httpUrl).post<Session>('/api/session/ucan', {
        ucan: await invoke(a, agent, 'room/read', room, {}, [readOnly]),
      })
      assert.deepEqual(s.can, ['room/read'])
      const cap = new HttpClient(a.node.httpUrl, s.token)
      assert.equal((await cap.get<Page>(`/api/rooms/${room}/messages`)).messages.length, 1)
      await assert.rejects(
        cap.post(`/api/rooms/${room}/messages`, { body: 'no' }),
        refused('MESH_FORBIDDEN', 'capability'),
      )
      await assert.rejects(
        cap.post(`/api/rooms/${room}/yjs-ticket`, {}),
        refused('MESH_FORBIDDEN', 'capability'),
      )
      const { members } = await a.api.get<{ members: Member[] }>(`/api/rooms/${room}/members`)
      assert.equal(members.find((m) => m.did === agent.did)?.role, 'read-only')

      // A chain that ends in 2 s: the session ends with it.
      const short = await chain(a, agent.did, room, ['room/read'], { ttlSeconds: 2 })
      const brief = await new HttpClient(a.node.httpUrl).post<Session>('/api/session/ucan', {
        ucan: await invoke(a, agent, 'room/read', room, {}, [short]),
      })
      assert.ok(Date.parse(brief.expiresAt) <= (short.expiration as number) * 1000)
      const briefly = new HttpClient(a.node.httpUrl, brief.token)
      await briefly.get(`/api/rooms/${room}/messages`)
      await waitFor(
        async () =>
          briefly.get(`/api/rooms/${room}/messages`).then(
            () => false,
            (err: Refusal) => err.code === 'MESH_UNAUTHENTICATED',
          ),
        'the session ended with its chain',
        5000,
      )
    },
  )

  alphaTest(
    'a capability session syncs and writes its room over y-websocket (stock client)',
    async ({ a, room, agent }, t) => {
      const grant = await chain(a, agent.did, room, ['room/read', 'room/post'])
      const s = await new HttpClient(a.node.httpUrl).post<Session>('/api/session/ucan', {
        ucan: await invoke(a, agent, 'room/post', room, { body: 'opening' }, [grant]),
      })
      const cap = new HttpClient(a.node.httpUrl, s.token)
      const { ticket } = await cap.post<{ ticket: string }>(`/api/rooms/${room}/yjs-ticket`, {})
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(`${a.node.httpUrl.replace(/^http/, 'ws')}/yjs`, room, doc, {
        params: { token: ticket },
        WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
        disableBc: true,
      })
      t.after(() => {
        provider.destroy()
        doc.destroy()
      })
      await waitFor(() => doc.getMap('messages').size === 1, 'synced', 5000)
      const detail = await cap.get<{ ownMesh: string }>(`/api/rooms/${room}`)
      const entry: MessageEntry = {
        v: 1,
        room,
        author: agent.did,
        authorMesh: detail.ownMesh,
        body: 'over the socket',
        mentions: [],
        ts: Date.now(),
      }
      doc.getMap('messages').set(contentId(entry), entry)
      await waitFor(
        async () =>
          (await a.api.get<Page>(`/api/rooms/${room}/messages`)).messages.some(
            (m) => m.body === 'over the socket',
          ),
        'the socket write landed',
        5000,
      )
      // Revoking the chain closes the live socket (its ticket is spent: no way back in).
      const closes: number[] = []
      provider.on('connection-close', (event: { code: number } | null) => {
        if (event !== null) closes.push(event.code)
      })
      await a.node.authority.revoke(
        await invocationToken(
          a.architect,
          a.node.did,
          { can: 'ucan/revoke', with: a.node.did, nb: { ucan: grant.cid } },
          [await rootOf(a)],
        ),
      )
      await waitFor(() => closes.includes(4401), 'the socket closed', 5000)
      provider.destroy()
    },
  )
  alphaTest(
    'POST /api/rooms/:id/invite {did, mesh, ucan} admits one named foreign participant under room/invite',
    async ({ a, room, other, agent }) => {
      const resource = roomResourceOf(a.node.did, room)
      const inviteAct = (invitee: string, on = resource, signer = a.architect) =>
        invocationToken(signer, a.node.did, { can: 'room/invite', with: on, nb: { invitee } }, [])
      const root = await rootOf(a)
      const act = (invitee: string, on = resource) =>
        invocationToken(a.architect, a.node.did, { can: 'room/invite', with: on, nb: { invitee } }, [root])
      const beta = Ed25519KeyPair.generate().did
      const member = await a.api.post<Member & { local: boolean }>(`/api/rooms/${room}/invite`, {
        did: agent.did,
        mesh: beta,
        ucan: await act(agent.did),
      })
      assert.equal(member.did, agent.did)
      assert.equal(member.tier, 4)
      assert.equal(member.role, 'member')
      // Hostile: no chain; an act for another invitee; an act on another room; replayed.
      await assert.rejects(
        a.api.post(`/api/rooms/${room}/invite`, { did: agent.did, ucan: await inviteAct(agent.did) }),
        refused('MESH_UCAN_INVALID'),
      )
      const forOther = await act(beta)
      await assert.rejects(
        a.api.post(`/api/rooms/${room}/invite`, { did: agent.did, ucan: forOther }),
        refused('MESH_UCAN_INVALID'),
      )
      await assert.rejects(
        a.api.post(`/api/rooms/${room}/invite`, {
          did: agent.did,
          ucan: await act(agent.did, roomResourceOf(a.node.did, other)),
        }),
        refused('MESH_UCAN_INVALID'),
      )
      const once = await act(Ed25519KeyPair.generate().did)
      const invitee = (
        await a.api.post<Member>(`/api/rooms/${room}/invite`, { did: await didOfAct(once), ucan: once })
      ).did
      assert.ok(invitee)
      await assert.rejects(
        a.api.post(`/api/rooms/${room}/invite`, { did: invitee, ucan: once }),
        refused('MESH_REPLAY'),
      )
      // Unknown fields refused.
      await assert.rejects(
        a.api.post(`/api/rooms/${room}/invite`, { did: agent.did, ucan: once, extra: 1 }),
        refused('MESH_BAD_REQUEST'),
      )
    },
  )
})
