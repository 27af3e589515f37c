import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import type * as API from '@ucanto/interface'
import { AuditLog } from '../../src/audit/index.ts'
import {
  Authority,
  type AuthorityInit,
  type AuthorityVerdict,
  type CapabilityInput,
  DidResolver,
  decodeToken,
  encodeToken,
  issueDelegation,
  issueInvocation,
  issueMembershipCredential,
} from '../../src/auth/authority/index.ts'
import { viewOf } from '../../src/auth/authority/token.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

export { alice, bob, mallory }
/** This mesh's key ("alpha"); alice is its architect, bob a local member. */
export const service = new Ed25519KeyPair(Buffer.alloc(32, 4))
/** A peer mesh ("beta"), its architect carol (a human) and its agent dave. */
export const beta = new Ed25519KeyPair(Buffer.alloc(32, 5))
export const carol = new Ed25519KeyPair(Buffer.alloc(32, 6))
export const dave = new Ed25519KeyPair(Buffer.alloc(32, 7))
/** A mallory-run mesh. */
export const evil = new Ed25519KeyPair(Buffer.alloc(32, 8))

/** A fixed clock (whole seconds) so that skew boundaries are exact. */
export const NOW = Math.floor(Date.now() / 1000) * 1000
export const NOW_S = NOW / 1000
export const HOUR = 3600

export interface Mesh {
  store: MeshStore
  audit: AuditLog
  authority: Authority
  /** The root delegation (mesh → alice) as a ucanto view, to embed as a proof. */
  root: API.Delegation
  clock: { now: number }
}

export async function startMesh(
  t: TestContext,
  options: { store?: MeshStore; init?: Partial<AuthorityInit>; clock?: { now: number } } = {},
): Promise<Mesh> {
  const store = options.store ?? (await tempStore(t))
  const clock = options.clock ?? { now: NOW }
  const audit = new AuditLog({ store, key: service, now: () => clock.now })
  await audit.start()
  t.after(() => audit.stop())
  const authority = new Authority({
    store,
    audit,
    meshKey: service,
    meshName: 'alpha',
    architectDid: alice.did,
    now: () => clock.now,
    ...options.init,
  })
  await authority.start()
  t.after(() => authority.stop())
  const root = delegationOf((authority.rootDelegation() as { token: string }).token)
  return { store, audit, authority, root, clock }
}

/**
 * `mesh` restarted: its audit log stopped, its store closed and opened again, and a mesh
 * started on it (closed when the test ends).
 */
export async function restartMesh(t: TestContext, mesh: Mesh): Promise<Mesh> {
  await mesh.audit.stop()
  await mesh.store.close()
  const reopened = new MeshStore({ path: mesh.store.path })
  await reopened.open()
  t.after(() => reopened.close())
  return startMesh(t, { store: reopened })
}

/** A ucanto delegation view of an encoded token. */
export function delegationOf(token: string): API.Delegation {
  const decoded = decodeToken(token)
  if (decoded.error !== undefined) throw new Error(decoded.error.message)
  return viewOf(decoded.ok)
}

export function delegate(
  issuer: Ed25519KeyPair,
  audience: string,
  capabilities: CapabilityInput[],
  proofs: API.Proof[] = [],
  options: { exp?: number; nbf?: number } = {},
): Promise<API.Delegation> {
  return issueDelegation({
    issuer,
    audience,
    capabilities,
    proofs,
    expiration: options.exp ?? NOW_S + HOUR,
    ...(options.nbf === undefined ? {} : { notBefore: options.nbf }),
  })
}

export async function invoke(
  issuer: Ed25519KeyPair,
  capability: CapabilityInput,
  proofs: API.Proof[] = [],
  options: { exp?: number; nbf?: number; audience?: string } = {},
): Promise<string> {
  const invocation = await issueInvocation({
    issuer,
    audience: options.audience ?? service.did,
    capability,
    proofs,
    expiration: options.exp ?? NOW_S + 600,
    ...(options.nbf === undefined ? {} : { notBefore: options.nbf }),
  })
  return encodeToken(invocation)
}

/** beta's membership credential for one of its principals. */
export function betaMembership(
  subject: Ed25519KeyPair,
  kind: 'human' | 'agent',
  role: string,
  tier: 1 | 2 | 3 | 4,
): Promise<string> {
  return issueMembershipCredential(
    beta,
    { id: subject.did, kind, role, tier, mesh: beta.did, meshName: 'beta' },
    { now: NOW },
  )
}

/** A loopback HTTP server answering did:web documents from `documents` (path → JSON). */
export async function didWebServer(
  t: TestContext,
  documents: Map<string, unknown>,
): Promise<{ host: string; resolver: DidResolver; server: Server }> {
  const server = createServer((req, res) => {
    const doc = documents.get(req.url ?? '')
    if (doc === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/did+json' }).end(JSON.stringify(doc))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  return { host, resolver: new DidResolver({ insecureHosts: [host], allowPrivate: [host] }), server }
}

/** The did:web of a host:port (the colon percent-encoded). */
export function didWebOf(host: string, path: string[] = []): string {
  return ['did:web', host.replace(':', '%3A'), ...path].join(':')
}

export function room(id = 'lobby'): `${string}:${string}` {
  return `${service.did}/rooms/${id}` as `${string}:${string}`
}

/**
 * A JWT-VC payload about `sub`: the W3C context, type `VerifiableCredential` and `types`,
 * `credentialSubject`; it expires an hour from NOW unless `exp` is null.
 */
export function vcPayload(
  sub: string,
  types: string[],
  credentialSubject: Record<string, unknown>,
  exp: number | null = NOW_S + 3600,
) {
  return {
    sub,
    ...(exp !== null ? { exp } : {}),
    vc: {
      '@context': ['https://www.w3.org/2018/credentials/v1'],
      type: ['VerifiableCredential', ...types],
      credentialSubject,
    },
  }
}

/** Asserts a refusal with its code, the proof it names and (when given) its reason. */
export function refused(
  verdict: AuthorityVerdict,
  code: string,
  proof: 'did' | 'ucan' | 'vc',
  reason?: string,
): void {
  assert.ok(verdict.error, `expected a refusal, got ok ${JSON.stringify(verdict.ok?.chain)}`)
  assert.equal(verdict.error.code, code, verdict.error.message)
  assert.equal(verdict.error.proof, proof, verdict.error.message)
  if (reason !== undefined) assert.equal(verdict.error.details.reason, reason, verdict.error.message)
}

export function passed(verdict: AuthorityVerdict): NonNullable<AuthorityVerdict['ok']> {
  assert.equal(verdict.error, undefined, verdict.error?.message ?? '')
  return verdict.ok as NonNullable<AuthorityVerdict['ok']>
}

export const post = (id = 'lobby') => ({ can: 'room/post', with: room(id) })

/** The `mesh/connect` act `ucan` checked on this mesh for a connection to `peer`. */
export function verifyConnect(authority: Authority, ucan: string, peer: string): Promise<AuthorityVerdict> {
  return authority.verifyAct(ucan, { audience: service.did, capability: 'mesh/connect', subject: peer })
}
