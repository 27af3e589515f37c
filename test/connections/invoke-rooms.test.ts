/**
 * One invocation dispatcher (node/invocations.ts): `room/post` and `room/read` travel over
 * `/mesh/invoke/1.0.0` as over `POST /api/invoke`. A human of alpha (the room's home)
 * delegates to beta's agent; the agent, signed in to its own mesh, has beta carry the
 * invocation to alpha (`POST /api/outbound/invoke`), and alpha answers exactly as its
 * `POST /api/invoke` would, refusals and codes included. Real libp2p on loopback.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type * as API from '@ucanto/interface'
import { issueDelegation, roomResourceOf } from '../../src/auth/authority/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { enrolledAgent, rootOf } from '../auth/chain-acts.ts'
import { waitFor } from '../p2p/nodes.ts'
import { connect } from '../rooms/helpers.ts'
import { startNode, type TestNode } from './nodes.ts'

type Refusal = { code: string; details: Record<string, unknown> }
type Page = { messages: Array<{ id: string; body: string; authorDid: string }> }
type RoomAnswer<R> = {
  room: string
  ability: string
  invoker: string
  tier: number
  human: string
  result: R
}
type Outbound<R> = { mesh: string; answer: RoomAnswer<R> }

const refused =
  (code: string, check?: (details: Record<string, unknown>) => void) =>
  (err: Refusal): boolean => {
    assert.equal(err.code, code, JSON.stringify(err))
    check?.(err.details)
    return true
  }

/** Alpha's architect's delegation of `cans` on alpha's `room` to `audience`, proved by alpha's root. */
async function roomChain(
  alpha: TestNode,
  audience: string,
  room: string,
  cans: string[],
  ttlSeconds = 3600,
): Promise<API.Delegation> {
  return issueDelegation({
    issuer: alpha.architect,
    audience,
    capabilities: cans.map((can) => ({ can, with: roomResourceOf(alpha.node.did, room) })),
    expiration: Math.floor(Date.now() / 1000) + ttlSeconds,
    proofs: [await rootOf(alpha)],
  })
}

/** Alpha and beta connected; a room (and another) on alpha; beta's agent `bot`, enrolled on beta and signed in there. */
async function setup(t: TestContext) {
  const alpha = await startNode(t, 'alpha')
  const beta = await startNode(t, 'beta')
  await connect(beta, alpha)
  await waitFor(
    async () => (await alpha.peers()).some((p) => p.did === beta.node.did && p.state === 'accepted'),
    'alpha accepted beta',
  )
  const { id: room } = await alpha.api.post<{ id: string }>('/api/rooms', { name: 'general' })
  const { id: other } = await alpha.api.post<{ id: string }>('/api/rooms', { name: 'other' })
  await alpha.api.post(`/api/rooms/${room}/messages`, { body: 'welcome' })
  const member = (key: Ed25519KeyPair, name: string) => enrolledAgent(beta, key, name)
  const bot = Ed25519KeyPair.generate()
  const botApi = await member(bot, 'bot')
  /** `bot`'s invocation of `can` on alpha's `on` room, carried by beta. */
  const send = async <R>(can: string, on: string, nb: Record<string, unknown>, proofs: API.Delegation[]) =>
    botApi.post<Outbound<R>>('/api/outbound/invoke', {
      mesh: alpha.node.did,
      ucan: await invocationToken(
        bot,
        alpha.node.did,
        { can, with: roomResourceOf(alpha.node.did, on), nb },
        proofs,
      ),
    })
  return { alpha, beta, room, other, bot, botApi, member, send }
}

describe('room/post and room/read over /mesh/invoke/1.0.0 (one dispatcher)', () => {
  it("beta's agent, under a chain from alpha's architect, posts to and reads alpha's room through beta", async (t) => {
    const { alpha, beta, room, bot, send } = await setup(t)
    const grant = await roomChain(alpha, bot.did, room, ['room/read', 'room/post'])

    const posted = await send<{ id: string }>('room/post', room, { body: 'hello over libp2p' }, [grant])
    assert.equal(posted.mesh, alpha.node.did)
    assert.deepEqual(
      [posted.answer.room, posted.answer.ability, posted.answer.invoker, posted.answer.tier],
      [room, 'room/post', bot.did, 4],
    )
    assert.equal(posted.answer.human, alpha.architect.did)
    const read = await send<Page>('room/read', room, { limit: 10 }, [grant])
    assert.equal(read.answer.ability, 'room/read')
    assert.deepEqual(
      read.answer.result.messages.map((m) => m.body),
      ['welcome', 'hello over libp2p'],
    )
    assert.equal(read.answer.result.messages[1]?.id, posted.answer.result.id)
    assert.equal(read.answer.result.messages[1]?.authorDid, bot.did)
    // Alpha's own humans see it, and the audit logs on both sides say what happened.
    const page = await alpha.api.get<Page>(`/api/rooms/${room}/messages`)
    assert.ok(page.messages.some((m) => m.body === 'hello over libp2p' && m.authorDid === bot.did))
    const invoked = await alpha.api.get<{ entries: Array<{ actor: string; details: { can: string } }> }>(
      '/api/audit?action=room.invoked',
    )
    assert.deepEqual(
      invoked.entries.map((e) => [e.actor, e.details.can]),
      [
        [bot.did, 'room/post'],
        [bot.did, 'room/read'],
      ],
    )
    const sent = await beta.api.get<{ entries: Array<{ actor: string; details: { outcome: string } }> }>(
      '/api/audit?action=agent.invoke.sent',
    )
    assert.deepEqual(
      sent.entries.map((e) => [e.actor, e.details.outcome]),
      [
        [bot.did, 'ok'],
        [bot.did, 'ok'],
      ],
    )
    // The same invocation over HTTP gets the same answer's shape: one dispatcher.
    const direct = await new HttpClient(alpha.node.httpUrl).post<RoomAnswer<Page>>('/api/invoke', {
      ucan: await invocationToken(
        bot,
        alpha.node.did,
        { can: 'room/read', with: roomResourceOf(alpha.node.did, room), nb: { limit: 1 } },
        [grant],
      ),
    })
    assert.deepEqual(Object.keys(direct).sort(), Object.keys(read.answer).sort())
  })

  it("refusals come back with alpha's code: no chain, expired, widened, another room, replayed, not invocable", async (t) => {
    const { alpha, room, other, bot, botApi, member, send } = await setup(t)
    const byAlpha = (d: Record<string, unknown>) => assert.equal(d.refusedBy, alpha.node.did)
    // No chain.
    await assert.rejects(send('room/post', room, { body: 'x' }, []), refused('MESH_UCAN_INVALID', byAlpha))
    // Expired (beyond the ±60 s skew).
    const expired = await roomChain(alpha, bot.did, room, ['room/post'], -300)
    await assert.rejects(
      send('room/post', room, { body: 'x' }, [expired]),
      refused('MESH_UCAN_INVALID', (d) => {
        byAlpha(d)
        assert.equal(d.reason, 'expired')
      }),
    )
    // Widened: a read-only chain used to post.
    const readOnly = await roomChain(alpha, bot.did, room, ['room/read'])
    await assert.rejects(
      send('room/post', room, { body: 'x' }, [readOnly]),
      refused('MESH_FORBIDDEN', byAlpha),
    )
    // Another room than the chain's.
    const good = await roomChain(alpha, bot.did, room, ['room/read', 'room/post'])
    await assert.rejects(send('room/read', other, {}, [good]), refused('MESH_FORBIDDEN', byAlpha))
    await assert.rejects(send('room/post', other, { body: 'x' }, [good]), refused('MESH_FORBIDDEN', byAlpha))
    // Malformed caveats, refused by alpha before any proof.
    await assert.rejects(
      send('room/read', room, { limit: 10_000 }, [good]),
      refused('MESH_BAD_REQUEST', byAlpha),
    )
    // Replayed: beta carries it twice, alpha spent it the first time.
    const once = await invocationToken(
      bot,
      alpha.node.did,
      { can: 'room/post', with: roomResourceOf(alpha.node.did, room), nb: { body: 'once' } },
      [good],
    )
    const carry = (ucan: string) => botApi.post('/api/outbound/invoke', { mesh: alpha.node.did, ucan })
    await carry(once)
    await assert.rejects(carry(once), refused('MESH_REPLAY', byAlpha))
    // An ability the manifest does not list, whatever the chain: refused by the dispatcher.
    const share = await invocationToken(
      bot,
      alpha.node.did,
      { can: 'room/share', with: roomResourceOf(alpha.node.did, room), nb: {} },
      [good],
    )
    await assert.rejects(
      carry(share),
      refused('MESH_UCAN_INVALID', (d) => {
        byAlpha(d)
        assert.equal(d.reason, 'capability')
        // the model proxy (SPEC §13): model/invoke is dispatched too (refused while there is no upstream)
        assert.deepEqual([...(d.takes as string[])].sort(), [
          'agent/invoke',
          'model/invoke',
          'room/post',
          'room/read',
        ])
      }),
    )
    // Oversized: a body over the room's limit travels (the request is under the protocol's cap) and alpha refuses it.
    await assert.rejects(
      send('room/post', room, { body: 'x'.repeat(8 * 1024 + 1) }, [good]),
      refused('MESH_TOO_LARGE', byAlpha),
    )
    // Another member of beta with bot's chain (its own invocation, so beta carries it): alpha refuses it.
    const thief = Ed25519KeyPair.generate()
    const thiefApi = await member(thief, 'thief')
    const stolen = await invocationToken(
      thief,
      alpha.node.did,
      { can: 'room/post', with: roomResourceOf(alpha.node.did, room), nb: { body: 'stolen' } },
      [good],
    )
    await assert.rejects(
      thiefApi.post('/api/outbound/invoke', { mesh: alpha.node.did, ucan: stolen }),
      refused('MESH_UCAN_INVALID', byAlpha),
    )
    // Only what was accepted landed (the sentinel after the attacks).
    const sentinel = await send<{ id: string }>('room/post', room, { body: 'sentinel' }, [good])
    const page = await alpha.api.get<Page>(`/api/rooms/${room}/messages`)
    assert.deepEqual(
      page.messages.map((m) => m.body),
      ['welcome', 'once', 'sentinel'],
    )
    assert.equal(page.messages.at(-1)?.id, sentinel.answer.result.id)
    assert.equal((await alpha.api.get<Page>(`/api/rooms/${other}/messages`)).messages.length, 0)
  })
})
