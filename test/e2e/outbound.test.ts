import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { type CliMesh, connectCli, delegateToFile, e2e, refusedCli, startCliMeshes } from '../fixtures/e2e.ts'

describe('outbound invocation across processes, driven by the CLI', () => {
  it("alpha's architect invokes beta's echo, and posts to and reads beta's room, through alpha over libp2p; beta's refusals and an unconnected mesh come back with their codes", async (t) => {
    const e = await e2e(t, 'mesh-outbound-e2e-')
    const { keystore, cli: ok } = e
    const meshes = await startCliMeshes(e, ['alpha', 'beta', 'gamma'])
    const [alpha, beta, gamma] = meshes as [CliMesh, CliMesh, CliMesh]
    await connectCli(e, alpha, beta)

    const refused = (code: string, ...args: string[]) => refusedCli(e, code, alpha, ...args)
    const echo = ['outbound', 'invoke', beta.did as string, 'echo', 'echo', '--input', '{"text":"hi"}']

    // No chain from beta: beta's refusal, with beta's code.
    const noChain = await refused('MESH_UCAN_INVALID', ...echo)
    assert.equal(noChain.details.refusedBy, beta.did)

    // Beta's architect delegates echo to alpha's architect and trusts her at tier 3.
    const alphaArchitect = (await keystore.load('alpha-architect')).did
    const grant = await delegateToFile(
      e,
      beta,
      'to-alpha',
      alphaArchitect,
      'agent/invoke',
      ...['--agent', 'echo', '--skill', 'echo'],
    )
    await ok(beta, 'trust', alphaArchitect, '--tier', '3', '--reason', 'alpha’s architect')
    const res = await ok<{ mesh: string; answer: { result: { echo: unknown }; invoker: string } }>(
      alpha,
      ...echo,
      '--proof',
      grant.proof,
    )
    assert.equal(res.mesh, beta.did)
    assert.deepEqual(res.answer.result.echo, { text: 'hi' })
    assert.equal(res.answer.invoker, alphaArchitect)

    // Gamma has no connection with alpha.
    const unconnected = await refused(
      'MESH_NOT_CONNECTED',
      ...['outbound', 'invoke', gamma.did as string, 'echo', 'echo', '--proof', grant.proof],
    )
    assert.equal(unconnected.details.state, 'none')

    // One dispatcher: a room of beta, under chains from beta's architect, through alpha over libp2p.
    const { id: room } = await (beta.api as HttpClient).post<{ id: string }>('/api/rooms', {
      name: 'general',
    })
    const { id: other } = await (beta.api as HttpClient).post<{ id: string }>('/api/rooms', { name: 'other' })
    const grantFileOf = async (ability: string) =>
      (await delegateToFile(e, beta, ability.replace('/', '-'), alphaArchitect, ability, '--room', room))
        .proof
    const postGrant = await grantFileOf('room/post')
    const readGrant = await grantFileOf('room/read')
    const posted = await ok<{ answer: { room: string; tier: number; result: { id: string } } }>(
      alpha,
      ...['outbound', 'post', beta.did as string, room, 'hello from alpha', '--proof', postGrant],
    )
    // Its tier at beta is the one beta's architect gave it above.
    assert.deepEqual([posted.answer.room, posted.answer.tier], [room, 3])
    const read = await ok<{ answer: { result: { messages: Array<{ id: string; body: string }> } } }>(
      alpha,
      ...['outbound', 'read', beta.did as string, room, '--limit', '10', '--proof', readGrant],
    )
    assert.deepEqual(
      read.answer.result.messages.map((m) => [m.id, m.body]),
      [[posted.answer.result.id, 'hello from alpha']],
    )
    // Beta's refusals, with beta's codes: another room, an ability the chain does not grant.
    const elsewhere = await refused(
      'MESH_FORBIDDEN',
      ...['outbound', 'post', beta.did as string, other, 'x', '--proof', postGrant],
    )
    assert.equal(elsewhere.details.refusedBy, beta.did)
    await refused(
      'MESH_FORBIDDEN',
      ...['outbound', 'post', beta.did as string, room, 'x', '--proof', readGrant],
    )
  })
})
