import { readFile } from 'node:fs/promises'
import type * as API from '@ucanto/interface'
import { INVOCATION_TTL_SECONDS, invocationToken as signedInvocation } from '../api/ucan.ts'
import {
  CAPABILITIES,
  type CapabilityInput,
  decodeToken,
  encodeToken,
  issueDelegation,
  ucantoSigner,
  viewOf,
} from '../auth/authority/index.ts'
import { MeshError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import type { HttpClient } from './http-client.ts'

export { INVOCATION_TTL_SECONDS } from '../api/ucan.ts'

/** A delegation given on the command line: the encoded token, or `@file` holding it. */
export async function readToken(value: string): Promise<string> {
  const token = value.startsWith('@') ? (await readFile(value.slice(1), 'utf8')).trim() : value.trim()
  return token
}

/** The ucanto view of an encoded delegation (to embed as a proof). */
export function proofOf(token: string): API.Delegation {
  const decoded = decodeToken(token)
  if (decoded.error !== undefined)
    throw new MeshError('MESH_BAD_REQUEST', `not a UCAN token: ${decoded.error.message}`)
  return viewOf(decoded.ok)
}

/** The delegations given on the command line (tokens or `@file`s), to embed as proofs. */
export async function givenProofs(given: string[] = []): Promise<API.Delegation[]> {
  return Promise.all(given.map(async (g) => proofOf(await readToken(g))))
}

/**
 * The proofs a human's invocations on their own mesh carry: the delegations given with
 * `--proof`, else — when the signer is the mesh's architect — the mesh's root delegation
 * (`GET /api/auth/root-delegation`).
 */
export async function chainProofs(
  client: HttpClient,
  key: Ed25519KeyPair,
  given: string[] = [],
): Promise<API.Delegation[]> {
  if (given.length > 0) return givenProofs(given)
  const root = await client.call('rootDelegation')
  if (root.architect !== key.did) {
    throw new MeshError(
      'MESH_BAD_REQUEST',
      'you are not this mesh’s architect: pass --proof with a delegation to your key (mesh delegate)',
      { architect: root.architect, signer: key.did },
    )
  }
  return [proofOf(root.token)]
}

/** Signs an invocation of `can` on `resource` addressed to `audience`, encoded for the `ucan` field. */
export function invocationToken(
  key: Ed25519KeyPair,
  audience: string,
  capability: CapabilityInput,
  proofs: API.Delegation[],
  ttlSeconds = INVOCATION_TTL_SECONDS,
): Promise<string> {
  return signedInvocation(ucantoSigner(key), audience, capability, proofs, ttlSeconds).catch(
    refusedCapability,
  )
}

// issue 14: a malformed ability or resource a person typed is theirs to fix, not MESH_INTERNAL
/** ucanto's ParseError (`can` without a path segment, `with` not a URI, …) as MESH_BAD_REQUEST. */
function refusedCapability(err: unknown): never {
  if (err instanceof Error && err.name === 'ParseError') {
    throw new MeshError(
      'MESH_BAD_REQUEST',
      err.message.replace(/^Capability has invalid /, 'invalid capability: '),
    )
  }
  throw err
}

/** An act on the signer's own mesh: `can` with its subject caveat set to `subject`. */
export function actCapability(meshDid: string, can: string, subject?: string): CapabilityInput {
  const name = CAPABILITIES[can]?.subject
  return {
    can,
    with: meshDid,
    ...(name !== undefined && subject !== undefined ? { nb: { [name]: subject } } : {}),
  }
}

/** Signs a delegation of `capability` to `audience` (embedding `proofs`). */
export async function delegationToken(
  key: Ed25519KeyPair,
  audience: string,
  capability: CapabilityInput,
  proofs: API.Delegation[],
  ttlSeconds: number,
): Promise<{ token: string; cid: string; exp: number }> {
  const exp = Math.floor(Date.now() / 1000) + ttlSeconds
  const delegation = await issueDelegation({
    issuer: key,
    audience,
    capabilities: [capability],
    expiration: exp,
    proofs,
  }).catch(refusedCapability)
  return { token: await encodeToken(delegation), cid: delegation.cid.toString(), exp }
}
