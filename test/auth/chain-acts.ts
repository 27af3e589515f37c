import type * as API from '@ucanto/interface'
import type { CapabilityInput } from '../../src/auth/authority/index.ts'
import { actCapability, delegationToken, invocationToken, proofOf } from '../../src/cli/chains.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { TestNode } from '../connections/nodes.ts'

/** The node's root delegation (mesh key → architect), as the CLI fetches it. */
export async function rootOf(node: TestNode): Promise<API.Delegation> {
  const root = await node.api.get<{ token: string }>('/api/auth/root-delegation')
  return proofOf(root.token)
}

/** A UCAN chain act of `node`'s architect (or `signer` with `proofs`) on `node`'s mesh. */
export async function chainAct(
  node: TestNode,
  can: string,
  subject?: string,
  options: { signer?: Ed25519KeyPair; proofs?: API.Delegation[]; ttlSeconds?: number } = {},
): Promise<string> {
  return invocationToken(
    options.signer ?? node.architect,
    node.node.did,
    actCapability(node.node.did, can, subject),
    options.proofs ?? [await rootOf(node)],
    options.ttlSeconds,
  )
}

/** A delegation from `issuer` (default the architect, with the root as proof) to `audience`. */
export async function grant(
  node: TestNode,
  audience: string,
  capability: CapabilityInput,
  options: { issuer?: Ed25519KeyPair; proofs?: API.Delegation[]; ttlSeconds?: number } = {},
): Promise<{ token: string; view: API.Delegation }> {
  const { token } = await delegationToken(
    options.issuer ?? node.architect,
    audience,
    capability,
    options.proofs ?? [await rootOf(node)],
    options.ttlSeconds ?? 3600,
  )
  return { token, view: proofOf(token) }
}

// one invocation dispatcher: a member of a carrier mesh, for invocations over /mesh/invoke
/** `key` enrolled on `node` as an agent named `name` (its architect's mesh/enrol act), signed in there. */
export async function enrolledAgent(node: TestNode, key: Ed25519KeyPair, name: string): Promise<HttpClient> {
  const nb = { did: key.did, kind: 'agent', role: 'agent' }
  const ucan = await chainActOn(node, { can: 'mesh/enrol', with: node.node.did, nb })
  await node.api.post('/api/members', { did: key.did, kind: 'agent', name, ucan })
  return signIn(node.node.httpUrl, key)
}

/** The architect's invocation of `capability` on `node`, proved by the root delegation. */
async function chainActOn(node: TestNode, capability: CapabilityInput): Promise<string> {
  return invocationToken(node.architect, node.node.did, capability, [await rootOf(node)])
}
