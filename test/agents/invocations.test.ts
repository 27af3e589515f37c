/**
 * The one invocation dispatcher (src/agents/invocations.ts) on its own: it reads the one
 * ability an invocation claims and hands the whole request to that ability's handler;
 * anything else is refused before any proof is checked. Over the wire:
 * test/connections/invoke-rooms.test.ts, test/manifest/walk.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type InvocationHandler, Invocations } from '../../src/agents/index.ts'
import { ChainVerifier, DidResolver } from '../../src/auth/authority/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { alice, bob } from '../fixtures/principals.ts'

const MESH = bob.did

function dispatcher() {
  const calls: Array<{ can: string; ucan: string; signal?: AbortSignal }> = []
  const handler =
    (can: string): InvocationHandler =>
    async (request, options) => {
      calls.push({ can, ucan: request.ucan, ...(options.signal ? { signal: options.signal } : {}) })
      return { ran: can }
    }
  const chains = new ChainVerifier({ resolver: new DidResolver() })
  const invocations = new Invocations({
    authority: () => ({ chains }),
    handlers: { 'agent/invoke': handler('agent/invoke'), 'room/post': handler('room/post') },
  })
  return { invocations, calls }
}

const token = (can: string, nb: Record<string, unknown> = {}) =>
  invocationToken(alice, MESH, { can, with: `${MESH}/rooms/r1`, nb }, [])

type Refusal = { code: string; details: Record<string, unknown> }

describe('Invocations: one dispatcher for POST /api/invoke and /mesh/invoke/1.0.0', () => {
  it('hands the request and the signal to the handler of the ability it claims', async () => {
    const { invocations, calls } = dispatcher()
    const ucan = await token('room/post', { body: 'hi' })
    const signal = new AbortController().signal
    assert.deepEqual(await invocations.invoke({ ucan }, { signal }), { ran: 'room/post' })
    assert.deepEqual(calls, [{ can: 'room/post', ucan, signal }])
    assert.deepEqual(invocations.abilities(), ['agent/invoke', 'room/post'])
  })

  it('refuses, before any proof, an ability it has no handler for, and what is not an invocation', async () => {
    const { invocations, calls } = dispatcher()
    // mallory's tries: abilities it does not dispatch, then garbage.
    for (const can of ['room/share', 'mesh/connect', 'room/read', 'agent/invoke/x']) {
      await assert.rejects(invocations.invoke({ ucan: await token(can) }), (err: Refusal) => {
        assert.equal(err.code, 'MESH_UCAN_INVALID')
        assert.equal(err.details.reason, 'capability')
        assert.equal(err.details.can, can)
        assert.deepEqual(err.details.takes, ['agent/invoke', 'room/post'])
        return true
      })
    }
    for (const ucan of ['not-a-token', 'A'.repeat(4096), '']) {
      await assert.rejects(invocations.invoke({ ucan }), (err: Refusal) => {
        assert.equal(err.code, 'MESH_UCAN_INVALID')
        assert.equal(err.details.reason, 'malformed')
        return true
      })
    }
    assert.equal(calls.length, 0)
  })
})
