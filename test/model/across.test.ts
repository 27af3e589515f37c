/**
 * The model proxy across meshes (SPEC §13, §8): beta's agent, a foreign tier-4 principal
 * on alpha, reaches alpha's model proxy through its own node — `POST
 * /api/outbound/invoke` on beta carries its `model/invoke` over `/mesh/invoke/1.0.0` to
 * alpha's one invocation dispatcher — with a chain alpha's architect signed, and is
 * refused without one. Real libp2p on loopback; the upstream in its own process.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { enrolledAgent, rootOf } from '../auth/chain-acts.ts'
import { startNode } from '../connections/nodes.ts'
import { waitFor } from '../p2p/nodes.ts'
import { connect } from '../rooms/helpers.ts'
import { ask, modelGrant, modelInvocation, spawnFakeOpenAI } from './helpers.ts'

type Refusal = { code: string; details: Record<string, unknown> }
type Carried = {
  mesh: string
  answer: {
    ability: string
    invoker: string
    tier: number
    human: string | null
    result: { choices: Array<{ message: { content: string } }>; usage: { total_tokens: number } }
  }
}

describe('model proxy across meshes: /mesh/invoke/1.0.0 (SPEC §13)', () => {
  it('beta’s agent gets a completion from alpha’s proxy through beta, under alpha’s chain; refused without', async (t) => {
    const fake = await spawnFakeOpenAI(t)
    const alpha = await startNode(t, 'alpha', { model: { upstream: fake.url } })
    const beta = await startNode(t, 'beta')
    try {
      await connect(beta, alpha)
      await waitFor(
        async () => (await alpha.peers()).some((p) => p.did === beta.node.did && p.state === 'accepted'),
        'alpha accepted beta',
      )
      const bot = Ed25519KeyPair.generate()
      const botApi = await enrolledAgent(beta, bot, 'bot')
      const did = alpha.node.did
      const grant = await modelGrant(alpha.architect, did, bot.did, [await rootOf(alpha)])
      const carried = await botApi.post<Carried>('/api/outbound/invoke', {
        mesh: did,
        ucan: await modelInvocation(bot, did, [grant], { request: ask('across the mesh') }),
      })
      assert.equal(carried.mesh, did)
      assert.equal(carried.answer.ability, 'model/invoke')
      assert.equal(carried.answer.invoker, bot.did)
      assert.equal(carried.answer.tier, 4)
      assert.equal(carried.answer.human, alpha.architect.did)
      assert.equal(carried.answer.result.choices[0]?.message.content, 'echo: across the mesh')
      assert.equal(carried.answer.result.usage.total_tokens, 3 + 4)
      // without a chain: alpha refuses, and beta carries the refusal back
      await assert.rejects(
        botApi.post('/api/outbound/invoke', {
          mesh: did,
          ucan: await modelInvocation(bot, did, [], { request: ask('no chain') }),
        }),
        (err: Refusal) => {
          assert.equal(err.code, 'MESH_UCAN_INVALID', JSON.stringify(err))
          return true
        },
      )
      const usage = await alpha.api.get<{
        usage: Array<{ principal: string; requests: number; totalTokens: number }>
      }>(`/api/usage?principal=${bot.did}`)
      assert.equal(usage.usage[0]?.requests, 1)
      assert.equal(usage.usage[0]?.totalTokens, 7)
    } finally {
      await beta.stop()
      await alpha.stop()
    }
  })
})
