import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AuditPage } from '../../src/audit/index.ts'
import {
  createEnvelope,
  encodeEnvelope,
  MESH_INVOKE_PROTOCOL,
  type RejectedEntry,
} from '../../src/connections/index.ts'
import { type Ed25519KeyPair, loadKeyHistory } from '../../src/identity/index.ts'
import { mallory } from '../fixtures/principals.ts'
import { connectOverHttp, freePort, unreachable } from './http-nodes.ts'
import { echoInvocation, memberOf } from './invoke-members.ts'
import type { TestNode } from './nodes.ts'

type Refusal = { code: string; details: Record<string, unknown> }

const refused = (code: string, check?: (details: Record<string, unknown>) => void) => (err: Refusal) => {
  assert.equal(err.code, code, JSON.stringify(err))
  check?.(err.details)
  return true
}

interface Answer {
  status: number
  json: { type?: string; origin?: string; body?: Record<string, unknown> }
}

/** One raw POST to `node`'s `/federation/send`, as a phase-1 peer sends it. */
async function post(node: TestNode, body: Uint8Array): Promise<Answer> {
  const res = await fetch(`${node.node.httpUrl}/federation/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  return { status: res.status, json: (await res.json()) as Answer['json'] }
}

function invokeEnvelope(key: Ed25519KeyPair, to: TestNode, ucan: string) {
  return createEnvelope(key, {
    type: 'invoke.request',
    target: to.node.did,
    protocol: MESH_INVOKE_PROTOCOL,
    body: { ucan },
  })
}

/** A signed invoke.error with `code`, with the code's status. */
function refusedReply(answer: Answer, code: string, status: number): void {
  assert.equal(answer.json.type, 'invoke.error', JSON.stringify(answer.json))
  assert.equal(answer.json.body?.code, code, JSON.stringify(answer.json.body))
  assert.equal(answer.status, status)
}

async function invoked(node: TestNode): Promise<number> {
  return (await node.api.get<AuditPage>('/api/audit?action=agent.invoked')).entries.length
}

describe('invocations over phase-1 HTTP: two nodes libp2p cannot join (SPEC §12)', () => {
  it('an invocation under a delegation answers over HTTP; without a chain, replayed, forged, oversized and a stranger’s are refused with their codes, nothing run', async (t) => {
    const a = await unreachable(t, 'alpha', await freePort())
    const b = await unreachable(t, 'beta', await freePort())
    await connectOverHttp(a, b)
    const { agent, toAgent, send } = await memberOf(a, 'echo', b)

    // POST /api/outbound/invoke at alpha: libp2p cannot reach beta, the invocation goes over HTTP.
    const res = await send(await echoInvocation(b, agent, { text: 'over http' }, [toAgent.view]))
    assert.equal(res.mesh, b.node.did)
    assert.deepEqual(res.answer.result.echo, { text: 'over http' })
    assert.deepEqual([res.answer.agent, res.answer.invoker, res.answer.tier], ['echo', agent.did, 3])
    assert.equal(a.node.libp2p.getConnections().length, 0, 'no libp2p connection at all')
    const sent = (await a.api.get<AuditPage>('/api/audit?action=agent.invoke.sent')).entries
    assert.deepEqual([sent.at(-1)?.actor, sent.at(-1)?.details.outcome], [agent.did, 'ok'])

    // No chain: beta's refusal, beta's code, named as beta's.
    await assert.rejects(
      send(await echoInvocation(b, agent, 'x', [])),
      refused('MESH_UCAN_INVALID', (d) => assert.equal(d.refusedBy, b.node.did)),
    )
    // The same invocation twice: beta spent it.
    const once = await echoInvocation(b, agent, 'once', [toAgent.view])
    await send(once)
    await assert.rejects(
      send(once),
      refused('MESH_REPLAY', (d) => assert.equal(d.refusedBy, b.node.did)),
    )

    // Raw envelopes, as a phase-1 peer posts them: alpha's mesh key, beta's /federation/send.
    const key = (await loadKeyHistory(a.dataDir)).current
    const before = await invoked(b)
    const env = invokeEnvelope(key, b, await echoInvocation(b, agent, 'raw', [toAgent.view]))
    const first = await post(b, encodeEnvelope(env))
    assert.equal(first.status, 200, JSON.stringify(first.json))
    assert.equal(first.json.type, 'invoke.answer')
    assert.equal(first.json.origin, b.node.did)
    assert.equal(first.json.body?.inReplyTo, env.id)
    assert.equal((first.json.body?.ok as { result?: { echo: unknown } } | undefined)?.result?.echo, 'raw')

    // Replayed: the very envelope again.
    const again = await post(b, encodeEnvelope(env))
    refusedReply(again, 'MESH_REPLAY', 409)
    assert.equal((again.json.body?.details as { reason?: string } | undefined)?.reason, 'duplicate')
    // Forged: another (valid) invocation put in after signing.
    const forged = invokeEnvelope(key, b, await echoInvocation(b, agent, 'signed', [toAgent.view]))
    forged.body = { ucan: await echoInvocation(b, agent, 'swapped', [toAgent.view]) }
    refusedReply(await post(b, encodeEnvelope(forged)), 'MESH_SIGNATURE_MISMATCH', 401)
    // Oversized: a request over the invoke protocol's limit.
    refusedReply(
      await post(b, encodeEnvelope(invokeEnvelope(key, b, 'A'.repeat(30 * 1024)))),
      'MESH_TOO_LARGE',
      413,
    )
    // Wrong target: meant for another mesh.
    const elsewhere = createEnvelope(key, {
      type: 'invoke.request',
      target: mallory.did,
      protocol: MESH_INVOKE_PROTOCOL,
      body: { ucan: await echoInvocation(b, agent, 'elsewhere', [toAgent.view]) },
    })
    refusedReply(await post(b, encodeEnvelope(elsewhere)), 'MESH_REPLAY', 409)
    // Malformed request inside a good envelope.
    refusedReply(
      await post(
        b,
        encodeEnvelope(
          createEnvelope(key, {
            type: 'invoke.request',
            target: b.node.did,
            protocol: MESH_INVOKE_PROTOCOL,
            body: { ucan: 'not base64url!', more: 1 },
          }),
        ),
      ),
      'MESH_BAD_REQUEST',
      400,
    )
    // A stranger: a mesh key with no connection to beta.
    const stranger = await post(
      b,
      encodeEnvelope(invokeEnvelope(mallory, b, await echoInvocation(b, agent, 'stranger', [toAgent.view]))),
    )
    refusedReply(stranger, 'MESH_NOT_CONNECTED', 409)

    // Sentinel: of all the raw posts only the first ran; each refusal is in the rejected log.
    assert.equal(await invoked(b), before + 1)
    for (const [code, peer] of [
      ['MESH_REPLAY', a.node.did],
      ['MESH_SIGNATURE_MISMATCH', a.node.did],
      ['MESH_TOO_LARGE', a.node.did],
      ['MESH_BAD_REQUEST', a.node.did],
      ['MESH_NOT_CONNECTED', mallory.did],
    ] as const) {
      const rejected = await b.api.get<{ entries: RejectedEntry[] }>(
        `/api/federation/rejected?code=${code}&peer=${encodeURIComponent(peer)}`,
      )
      assert.ok(
        rejected.entries.some((e) => e.kind === 'invoke.request'),
        `${code} from ${peer} in rejected: ${JSON.stringify(rejected.entries)}`,
      )
    }
  })
})
