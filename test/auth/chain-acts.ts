import type * as API from '@ucanto/interface'
import type { CapabilityInput } from '../../src/auth/authority/index.ts'
import { actCapability, delegationToken, invocationToken, proofOf } from '../../src/cli/chains.ts'
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
