import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { lpStream } from '@libp2p/utils'
import type { AuditPage } from '../../src/audit/index.ts'
import { agentResourceOf } from '../../src/auth/authority/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import type { MeshNodeInit } from '../../src/config.ts'
import { MAX_REQUEST_BYTES, MESH_INVOKE_PROTOCOL } from '../../src/connections/index.ts'
import { peerIdFromDid } from '../../src/identity/index.ts'
import type { MeshLibp2p } from '../../src/p2p/index.ts'
import { grant } from '../auth/chain-acts.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import { connect } from '../rooms/helpers.ts'
import { echoInvocation, memberOf } from './invoke-members.ts'
import { startNode, type TestNode } from './nodes.ts'
import { json, rawExchange } from './raw-exchange.ts'

type Refusal = { code: string; details: Record<string, unknown> }
const refused = (code: string, check?: (details: Record<string, unknown>) => void) => (err: Refusal) => {
  assert.equal(err.code, code, JSON.stringify(err))
  check?.(err.details)
  return true
}

/** Two meshes with an accepted connection; `a`'s echo agent signed in to `a`, granted echo on `b` (tier 3 there). */
async function pair(
  t: TestContext,
  outbound?: MeshNodeInit['outbound'],
  aOutbound?: MeshNodeInit['outbound'],
) {
  const a = await startNode(t, 'alpha', aOutbound !== undefined ? { outbound: aOutbound } : {})
  const b = await startNode(t, 'beta', outbound !== undefined ? { outbound } : {})
  await connect(a, b)
  await waitFor(
    async () => (await b.peers()).some((p) => p.did === a.node.did && p.state === 'accepted'),
    'b accepted',
  )
  return { a, b, ...(await memberOf(a, 'echo', b)) }
}

const raw = (libp2p: MeshLibp2p, to: TestNode, frames: Uint8Array[]) =>
  rawExchange(libp2p, to, MESH_INVOKE_PROTOCOL, frames)

async function auditOf(node: TestNode, action: string): Promise<AuditPage['entries']> {
  return (await node.api.get<AuditPage>(`/api/audit?action=${action}`)).entries
}

describe('outbound invocation over libp2p: /mesh/invoke/1.0.0', () => {
  it("an agent of A invokes B's echo through A: B's own answer, audited on both sides; B's refusals come back with B's code", async (t) => {
    const { a, b, agent, toAgent, send, agentApi } = await pair(t)

    const res = await send(await echoInvocation(b, agent, { text: 'over libp2p' }, [toAgent.view]))
    assert.equal(res.mesh, b.node.did)
    assert.deepEqual(res.answer.result.echo, { text: 'over libp2p' })
    assert.deepEqual([res.answer.agent, res.answer.invoker, res.answer.tier], ['echo', agent.did, 3])
    const invoked = await auditOf(b, 'agent.invoked')
    assert.equal(invoked.at(-1)?.actor, agent.did)
    const sent = await auditOf(a, 'agent.invoke.sent')
    assert.deepEqual(
      [sent.at(-1)?.actor, sent.at(-1)?.subject, sent.at(-1)?.details.outcome],
      [agent.did, b.node.did, 'ok'],
    )

    // No chain: B's refusal, B's code and details, named as B's.
    await assert.rejects(
      send(await echoInvocation(b, agent, 'x', [])),
      refused('MESH_UCAN_INVALID', (d) => {
        assert.equal(d.proof, 'ucan')
        assert.equal(d.refusedBy, b.node.did)
      }),
    )
    // Widened: a chain for the summarizer used on the echo agent.
    const summarizerOnly = await grant(b, agent.did, {
      can: 'agent/invoke',
      with: agentResourceOf(b.node.did, 'summarizer'),
      nb: { ability: 'room-summary' },
    })
    await assert.rejects(
      send(await echoInvocation(b, agent, 'y', [summarizerOnly.view])),
      refused('MESH_UCAN_INVALID', (d) => assert.equal(d.refusedBy, b.node.did)),
    )
    // A replay: B spent it.
    const once = await echoInvocation(b, agent, 'once', [toAgent.view])
    await send(once)
    await assert.rejects(
      send(once),
      refused('MESH_REPLAY', (d) => assert.equal(d.refusedBy, b.node.did)),
    )
    assert.equal((await auditOf(a, 'agent.invoke.sent')).at(-1)?.details.outcome, 'MESH_REPLAY')

    // Refused at A before it travels: someone else's invocation, one addressed to another mesh, no session.
    await assert.rejects(
      send(await echoInvocation(b, a.architect, 'z', [toAgent.view])),
      refused('MESH_FORBIDDEN'),
    )
    const toA = await invocationToken(
      agent,
      a.node.did,
      { can: 'agent/invoke', with: agentResourceOf(b.node.did, 'echo'), nb: { ability: 'echo', input: 1 } },
      [toAgent.view],
    )
    await assert.rejects(
      send(toA),
      refused('MESH_UCAN_INVALID', (d) => assert.equal(d.reason, 'audience')),
    )
    await assert.rejects(
      new HttpClient(a.node.httpUrl).post('/api/outbound/invoke', {
        mesh: b.node.did,
        ucan: await echoInvocation(b, agent, 'w', [toAgent.view]),
      }),
      refused('MESH_UNAUTHENTICATED'),
    )
    // Malformed body: refused by the schema.
    await assert.rejects(
      agentApi.post('/api/outbound/invoke', { mesh: 'not-a-did', ucan: 'x' }),
      refused('MESH_BAD_REQUEST'),
    )
  })

  it('a mesh not connected is MESH_NOT_CONNECTED; a connected one that is down is MESH_UNAVAILABLE', async (t) => {
    const { b, agent, toAgent, send } = await pair(t, { timeoutMs: 3000 })
    const c = await startNode(t, 'gamma')
    await assert.rejects(
      send(await echoInvocation(c, agent, 'x', []), c.node.did),
      refused('MESH_NOT_CONNECTED', (d) => assert.equal(d.state, 'none')),
    )
    const ucan = await echoInvocation(b, agent, 'x', [toAgent.view])
    const bDid = b.node.did
    await b.stop()
    await assert.rejects(
      send(ucan, bDid),
      refused('MESH_UNAVAILABLE', (d) => assert.equal(d.mesh, bDid)),
    )
  })

  it('after a key rotation the rotated mesh still answers, on its new host', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    await connect(a, b)
    const identity = a.node.did
    await a.api.post('/api/keys/rotate', { ucan: await a.act('mesh/rotate-key') })
    await waitFor(async () => {
      const p = (await b.peers()).find((x) => x.did === identity)
      return p !== undefined && p.keys.length === 2 && p.state === 'accepted'
    }, 'beta holds alpha’s new key')
    // B's echo agent invokes A's echo through B: A's handler runs on A's new host.
    const { agent, toAgent, send } = await memberOf(b, 'echo', a)
    const res = await send(await echoInvocation(a, agent, 'after rotation', [toAgent.view]), identity)
    assert.equal(res.answer.result.echo, 'after rotation')
  })

  it('one member cannot spend the whole mesh’s budget at the peer: its sends are limited at home', async (t) => {
    const { a, b, agent, toAgent, send } = await pair(t, undefined, { sendsPerMinute: 2 })
    await send(await echoInvocation(b, agent, 1, [toAgent.view]))
    await send(await echoInvocation(b, agent, 2, [toAgent.view]))
    await assert.rejects(
      send(await echoInvocation(b, agent, 3, [toAgent.view])),
      refused('MESH_RATE_LIMITED', (d) => assert.equal(d.refusedBy, undefined)),
    )
    assert.equal((await auditOf(b, 'agent.invoked')).length, 2)
    // Another member of A still gets through.
    const other = await memberOf(a, 'summarizer', b)
    const res = await other.send(await echoInvocation(b, other.agent, 'me too', [other.toAgent.view]))
    assert.equal(res.answer.result.echo, 'me too')
  })

  it('a stranger (no accepted connection) is refused before anything is read', async (t) => {
    const b = await startNode(t, 'beta')
    const mallory = await startHost(t)
    const answer = await raw(mallory.libp2p, b, [])
    assert.deepEqual((answer as { error: { code: string } }).error.code, 'MESH_NOT_CONNECTED')
    assert.equal((await auditOf(b, 'agent.invoked')).length, 0)
    const rejected = await b.api.get<{ entries: { kind: string; code: string; peer: string }[] }>(
      '/api/federation/rejected',
    )
    assert.ok(rejected.entries.some((e) => e.kind === 'invoke.request' && e.code === 'MESH_NOT_CONNECTED'))
  })

  it('oversized, malformed and flooding streams from a connected peer are cut; the peer still gets through after', async (t) => {
    const { a, b, agent, toAgent, send } = await pair(t, {
      requestsPerMinute: 6,
      maxInboundStreams: 2,
      readTimeoutMs: 1000,
    })
    const libp2p = a.node.libp2p
    // Too long: the stream is aborted, nothing answered.
    const big = await raw(libp2p, b, [json({ ucan: 'A'.repeat(MAX_REQUEST_BYTES) })])
    assert.ok(big instanceof Error, `cut, not answered: ${JSON.stringify(big)}`)
    await waitFor(async () => {
      const { entries } = await b.api.get<{ entries: { kind: string; code: string; peer: string }[] }>(
        '/api/federation/rejected',
      )
      return entries.some(
        (e) => e.kind === 'invoke.request' && e.code === 'MESH_TOO_LARGE' && e.peer === a.node.did,
      )
    }, 'the oversized request in the rejected log')
    // Not JSON, not {ucan}: answered MESH_BAD_REQUEST.
    const notJson = (await raw(libp2p, b, [new Uint8Array([0xff, 0xfe, 0x00])])) as Refusal & {
      error: Refusal
    }
    assert.equal(notJson.error.code, 'MESH_BAD_REQUEST')
    const extra = (await raw(libp2p, b, [json({ ucan: 'abc', more: 1 })])) as { error: Refusal }
    assert.equal(extra.error.code, 'MESH_BAD_REQUEST')
    // Silent: cut after the read timeout.
    const silent = await raw(libp2p, b, [])
    assert.ok(silent instanceof Error)
    // One good one (the fifth this minute), then the sixth, and the seventh is over the budget.
    const ok = await send(await echoInvocation(b, agent, 'sentinel', [toAgent.view]))
    assert.equal(ok.answer.result.echo, 'sentinel')
    await send(await echoInvocation(b, agent, 'sixth', [toAgent.view]))
    await assert.rejects(
      send(await echoInvocation(b, agent, 'flood', [toAgent.view])),
      refused('MESH_RATE_LIMITED', (d) => assert.equal(d.refusedBy, b.node.did)),
    )
    const invoked = await auditOf(b, 'agent.invoked')
    assert.deepEqual(
      invoked.map((e) => e.actor),
      [agent.did, agent.did],
    )
    // The misbehaving streams count against A's standing at B (as a mesh).
    await waitFor(async () => {
      const view = await b.api.get<TrustView>(`/api/trust/${a.node.did}?scope=mesh`)
      return view.refused >= 2
    }, 'A’s refusals counted at B')
  })

  it('streams beyond the per-connection limit are reset', async (t) => {
    const { a, b } = await pair(t, { maxInboundStreams: 2, readTimeoutMs: 3000 })
    const libp2p = a.node.libp2p
    const peer = peerIdFromDid(b.node.did)
    const open = await Promise.allSettled(
      [1, 2, 3, 4].map(() =>
        libp2p.dialProtocol(peer, MESH_INVOKE_PROTOCOL, { signal: AbortSignal.timeout(5000) }),
      ),
    )
    // The streams the receiver took are held open (waiting for a request); the rest are reset.
    const results = await Promise.all(
      open.map(async (o) => {
        if (o.status === 'rejected') return 'refused'
        const lp = lpStream(o.value)
        try {
          await lp.read({ signal: AbortSignal.timeout(2000) })
          return 'answered'
        } catch (err) {
          return (err as Error).name === 'TimeoutError' || /abort/i.test((err as Error).message)
            ? 'held'
            : 'reset'
        } finally {
          o.value.abort(new Error('done'))
        }
      }),
    )
    assert.equal(results.filter((r) => r === 'held').length, 2, JSON.stringify(results))
    assert.equal(results.filter((r) => r === 'refused' || r === 'reset').length, 2, JSON.stringify(results))
  })
})
