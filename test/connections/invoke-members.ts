import assert from 'node:assert/strict'
import type * as API from '@ucanto/interface'
import { agentResourceOf } from '../../src/auth/authority/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { grant, rootOf } from '../auth/chain-acts.ts'
import type { TestNode } from './nodes.ts'

/** Invocations carried to a peer mesh (`/mesh/invoke/1.0.0`, over libp2p or HTTP): the members that send them. */

export type Outbound = {
  mesh: string
  answer: { agent: string; invoker: string; tier: number; result: { echo: unknown } }
}

/** The key of `node`'s own agent `id` (agents keep their seeds in the store). */
export async function agentKey(node: TestNode, id: string): Promise<Ed25519KeyPair> {
  const seed = await node.node.store.sublevel<string>('agents').get(`1/key/${id}`)
  assert.ok(seed, `agent ${id} has a key`)
  return new Ed25519KeyPair(Buffer.from(seed, 'base64url'))
}

export async function promote(node: TestNode, subject: string, tier: number): Promise<void> {
  const ucan = await invocationToken(
    node.architect,
    node.node.did,
    { can: 'trust/promote', with: node.node.did, nb: { subject, tier, reason: 'test' } },
    [await rootOf(node)],
  )
  await node.api.put<TrustView>(`/api/trust/${subject}`, { tier, reason: 'test', ucan })
}

export function echoInvocation(
  to: TestNode,
  signer: Ed25519KeyPair,
  input: unknown,
  proofs: API.Delegation[],
) {
  return invocationToken(
    signer,
    to.node.did,
    { can: 'agent/invoke', with: agentResourceOf(to.node.did, 'echo'), nb: { ability: 'echo', input } },
    proofs,
  )
}

/**
 * `home`'s agent `id`, trusted at tier 3 by `peer` and granted `peer`'s echo, signed in
 * to `home`; `send` has `home` carry an invocation to `peer` (or `mesh`).
 */
export async function memberOf(home: TestNode, id: string, peer: TestNode) {
  const agent = await agentKey(home, id)
  await promote(peer, agent.did, 3)
  const toAgent = await grant(peer, agent.did, {
    can: 'agent/invoke',
    with: agentResourceOf(peer.node.did, 'echo'),
    nb: { ability: 'echo' },
  })
  const agentApi = await signIn(home.node.httpUrl, agent)
  const send = (ucan: string, mesh = peer.node.did) =>
    agentApi.post<Outbound>('/api/outbound/invoke', { mesh, ucan })
  return { agent, toAgent, agentApi, send }
}
