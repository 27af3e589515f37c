import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { delegate as ucantoDelegate } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import { Verifier as StockVerifier } from '@ucanto/principal'
import { createVerifiableCredentialJwt, verifyCredential } from 'did-jwt-vc'
import {
  ChainVerifier,
  CredentialVerifier,
  DidResolver,
  didWebDocument,
  encodeToken,
  issueMembershipCredential,
  issueVouchCredential,
  jwtIssuer,
  jwtSigner,
  ucantoSigner,
  ucantoVerifier,
} from '../../src/auth/authority/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  alice,
  beta,
  betaMembership,
  bob,
  carol,
  dave,
  delegate,
  didWebOf,
  didWebServer,
  invoke,
  mallory,
  NOW,
  NOW_S,
  room,
  service,
  startMesh,
  vcPayload,
} from './authority-fixtures.ts'

const vectors = JSON.parse(
  await readFile(new URL('../fixtures/did-key/ed25519-x25519.json', import.meta.url), 'utf8'),
) as Record<string, { seed: string }>

const verifier = () => new CredentialVerifier({ resolver: new DidResolver() })

/** A membership claim: carol is beta's architect (what a forger would have signed). */
const carolAsBetaArchitect = () =>
  vcPayload(carol.did, ['MeshMembershipCredential'], {
    kind: 'human',
    role: 'architect',
    tier: 1,
    mesh: beta.did,
    meshName: 'beta',
  })

describe('did:key vectors through the ucanto principal', () => {
  it('derives every W3C vector did, and signs what stock ucanto verifies (and back)', async () => {
    const entries = Object.entries(vectors)
    assert.ok(entries.length >= 5)
    const payload = new TextEncoder().encode('mesh')
    for (const [did, { seed }] of entries) {
      const key = new Ed25519KeyPair(Buffer.from(seed, 'hex'))
      const signer = ucantoSigner(key)
      assert.equal(signer.did(), did)
      assert.equal(ucantoVerifier(did).did(), did)
      const signature = await signer.sign(payload)
      assert.equal(await StockVerifier.parse(did as API.DID).verify(payload, signature), true)
      assert.equal(await ucantoVerifier(did).verify(payload, signature), true)
      assert.equal(await ucantoVerifier(mallory.did).verify(payload, signature), false)
    }
  })

  it('refuses a did:key that is not Ed25519', () => {
    assert.throws(() => ucantoVerifier('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'))
  })
})

describe('credentials (the vc proof)', () => {
  it('a membership credential issued by the mesh verifies, here and with stock did-jwt-vc', async () => {
    const jwt = await betaMembership(carol, 'human', 'architect', 1)
    const result = await verifier().verifyCredential(jwt, { now: NOW })
    assert.equal(result.error, undefined, result.error?.message ?? '')
    assert.deepEqual(result.ok?.membership, {
      id: carol.did,
      kind: 'human',
      role: 'architect',
      tier: 1,
      mesh: beta.did,
      meshName: 'beta',
    })
    const stock = await verifyCredential(jwt, new DidResolver().toResolvable() as never)
    assert.equal(stock.issuer, beta.did)
  })

  it('a vouching credential verifies and is named by its hash', async () => {
    const jwt = await issueVouchCredential(bob, { id: dave.did, statement: 'reliable' }, { now: NOW })
    const result = await verifier().verifyCredential(jwt, { now: NOW })
    assert.equal(result.ok?.vouch?.statement, 'reliable')
    assert.match(result.ok?.id ?? '', /^[A-Za-z0-9_-]{43}$/)
  })

  it('forged issuer: a credential naming beta but signed by mallory', async () => {
    const jwt = await createVerifiableCredentialJwt(carolAsBetaArchitect(), {
      did: beta.did,
      signer: jwtSigner(mallory),
      alg: 'EdDSA',
    })
    const result = await verifier().verifyCredential(jwt, { now: NOW })
    assert.equal(result.error?.code, 'MESH_VC_INVALID')
    assert.equal(result.error?.proof, 'vc')
    assert.equal(result.error?.details.reason, 'signature')
  })

  it('a membership credential issued by a mesh about another mesh’s member', async () => {
    const jwt = await createVerifiableCredentialJwt(carolAsBetaArchitect(), jwtIssuer(mallory))
    const result = await verifier().verifyCredential(jwt, { now: NOW })
    assert.equal(result.error?.code, 'MESH_VC_INVALID')
    assert.equal(result.error?.details.reason, 'issuer')
  })

  it('a credential without exp', async () => {
    const jwt = await createVerifiableCredentialJwt(
      vcPayload(carol.did, ['MeshVouchCredential'], { statement: 'forever' }, null),
      jwtIssuer(bob),
    )
    const result = await verifier().verifyCredential(jwt, { now: NOW })
    assert.equal(result.error?.code, 'MESH_VC_INVALID')
    assert.equal(result.error?.details.reason, 'no-expiry')
  })

  it('expired (61 s past exp) and not yet valid credentials; 60 s passes', async () => {
    const jwt = await betaMembership(dave, 'agent', 'bot', 4) // nbf = NOW, exp = NOW + 1 year
    const v = verifier()
    assert.equal((await v.verifyCredential(jwt, { now: NOW - 61_000 })).error?.code, 'MESH_VC_INVALID')
    assert.equal((await v.verifyCredential(jwt, { now: NOW - 60_000 })).error, undefined)
    const short = await issueMembershipCredential(
      beta,
      { id: dave.did, kind: 'agent', role: 'bot', tier: 4, mesh: beta.did, meshName: 'beta' },
      { now: NOW, ttlSeconds: 10 },
    )
    assert.equal((await v.verifyCredential(short, { now: NOW + 71_000 })).error?.code, 'MESH_VC_INVALID')
    assert.equal((await v.verifyCredential(short, { now: NOW + 70_000 })).error, undefined)
  })

  it('one did-jwt options object reused across issuers yields a credential that is refused', async () => {
    // the hostile pattern: one mutable issuer/options object, its did switched for the next issuer
    const shared = {
      did: bob.did,
      signer: jwtSigner(bob),
      alg: 'EdDSA' as const,
      header: { kid: `${bob.did}#${bob.did.slice(8)}` },
    }
    const payload = (subject: string) => vcPayload(subject, ['MeshVouchCredential'], { statement: 'ok' })
    const first = await createVerifiableCredentialJwt(payload(dave.did), shared, shared)
    shared.did = carol.did // …but the signer (and kid) stayed bob's
    const second = await createVerifiableCredentialJwt(payload(dave.did), shared, shared)
    const v = verifier()
    assert.equal((await v.verifyCredential(first, { now: NOW })).error, undefined)
    const refused = await v.verifyCredential(second, { now: NOW })
    assert.equal(refused.error?.code, 'MESH_VC_INVALID')
    assert.equal(refused.error?.details.issuer, carol.did)
  })

  it('this module never shares an options object: a fresh, frozen issuer per call', async () => {
    const a = jwtIssuer(bob)
    const b = jwtIssuer(bob)
    assert.notEqual(a, b)
    assert.ok(Object.isFrozen(a))
    assert.throws(() => {
      ;(a as { did: string }).did = carol.did
    })
    const x = await issueVouchCredential(bob, { id: dave.did, statement: 'one' }, { now: NOW })
    const y = await issueVouchCredential(carol, { id: dave.did, statement: 'two' }, { now: NOW })
    const v = verifier()
    assert.equal((await v.verifyCredential(x, { now: NOW })).ok?.issuer, bob.did)
    assert.equal((await v.verifyCredential(y, { now: NOW })).ok?.issuer, carol.did)
    const header = (jwt: string) =>
      JSON.parse(Buffer.from(jwt.split('.')[0] as string, 'base64url').toString())
    assert.notEqual(header(x).kid, header(y).kid)
  })

  it('a kid that names no key of the issuer', async () => {
    const jwt = await createVerifiableCredentialJwt(vcPayload(dave.did, [], { note: 'x' }), jwtIssuer(bob), {
      header: { kid: `${carol.did}#${carol.did.slice(8)}` },
    })
    const result = await verifier().verifyCredential(jwt, { now: NOW })
    assert.equal(result.error?.code, 'MESH_VC_INVALID')
    assert.equal(result.error?.details.reason, 'issuer')
  })

  it('non-EdDSA, nested and malformed JWTs', async () => {
    const v = verifier()
    const good = await betaMembership(dave, 'agent', 'bot', 4)
    const [, p, s] = good.split('.')
    for (const header of [{ alg: 'none' }, { alg: 'ES256K' }, { alg: 'EdDSA', cty: 'JWT' }]) {
      const jwt = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.${s}`
      assert.equal((await v.verifyCredential(jwt, { now: NOW })).error?.code, 'MESH_VC_INVALID')
    }
    for (const jwt of ['', 'a.b', 42, 'x'.repeat(20_000)]) {
      assert.equal((await v.verifyCredential(jwt, { now: NOW })).error?.code, 'MESH_VC_INVALID')
    }
  })
})

describe('did:web over HTTP', () => {
  it('a did:web issuer resolved from a local server: credentials and UCAN links verify', async (t) => {
    const web = new Ed25519KeyPair(Buffer.alloc(32, 11))
    const docs = new Map<string, unknown>()
    const { host, resolver } = await didWebServer(t, docs)
    const did = didWebOf(host)
    docs.set('/.well-known/did.json', didWebDocument(did, [web.publicKey]))
    assert.equal(resolver.documentUrl(did), `http://${host}/.well-known/did.json`)
    const jwt = await createVerifiableCredentialJwt(
      vcPayload(dave.did, ['MeshVouchCredential'], { statement: 'web' }),
      { did, signer: jwtSigner(web), alg: 'EdDSA' },
      { header: { kid: `${did}#key-1` } },
    )
    const result = await new CredentialVerifier({ resolver }).verifyCredential(jwt, { now: NOW })
    assert.equal(result.error, undefined, result.error?.message ?? '')
    assert.equal(result.ok?.issuer, did)
    // stock did-jwt-vc agrees, through our resolver
    assert.equal((await verifyCredential(jwt, resolver.toResolvable() as never)).issuer, did)

    // a UCAN link issued by the did:web principal
    const { authority, root } = await startMesh(t, { init: { resolver } })
    const toWeb = await delegate(alice, did, [{ can: 'room/post', with: room() }], [root])
    const webSigner = ucantoSigner(web).withDID(did as API.DID)
    const toDave = await ucantoDelegate({
      issuer: webSigner as never,
      audience: { did: () => dave.did as API.DID },
      capabilities: [{ can: 'room/post', with: room() }] as never,
      proofs: [toWeb],
      expiration: NOW_S + 600,
    })
    await authority.promote(
      await invoke(
        alice,
        { can: 'trust/promote', with: service.did, nb: { subject: did, tier: 2, reason: 'web partner' } },
        [root],
      ),
      did,
    )
    const verdict = await authority.verifyAuthority({
      ucan: await invoke(dave, { can: 'room/post', with: room() }, [toDave]),
      can: 'room/post',
      with: room(),
    })
    assert.equal(verdict.error, undefined, verdict.error?.message ?? '')
    assert.deepEqual(verdict.ok?.issuers, [dave.did, did, alice.did, service.did])
  })

  it('a did:web whose document key does not match the signer is refused', async (t) => {
    const web = new Ed25519KeyPair(Buffer.alloc(32, 12))
    const docs = new Map<string, unknown>()
    const { host, resolver } = await didWebServer(t, docs)
    const did = didWebOf(host, ['users', 'eve'])
    docs.set('/users/eve/did.json', didWebDocument(did, [mallory.publicKey]))
    const jwt = await createVerifiableCredentialJwt(vcPayload(dave.did, [], { note: 'x' }), {
      did,
      signer: jwtSigner(web),
      alg: 'EdDSA',
    })
    const result = await new CredentialVerifier({ resolver }).verifyCredential(jwt, { now: NOW })
    assert.equal(result.error?.code, 'MESH_VC_INVALID')
    assert.equal(result.error?.details.reason, 'signature')
    // and as a UCAN issuer: the chain link fails its signature
    const chains = new ChainVerifier({ resolver })
    const toDave = await ucantoDelegate({
      issuer: ucantoSigner(web).withDID(did as API.DID) as never,
      audience: { did: () => service.did as API.DID },
      capabilities: [{ can: 'room/post', with: room() }] as never,
      expiration: NOW_S + 600,
    })
    const verdict = await chains.verify(
      await encodeToken(toDave),
      { can: 'room/post', with: room() },
      { audience: service.did, now: NOW },
    )
    assert.equal(verdict.error?.code, 'MESH_SIGNATURE_MISMATCH')
    assert.equal(verdict.error?.proof, 'did')
  })

  it('a did:web document for another DID is refused (DID proof)', async (t) => {
    const docs = new Map<string, unknown>()
    const { host, resolver } = await didWebServer(t, docs)
    const did = didWebOf(host)
    docs.set('/.well-known/did.json', didWebDocument(didWebOf('example.com'), [mallory.publicKey]))
    const resolved = await resolver.resolve(did)
    assert.equal(resolved.error?.code, 'MESH_SIGNATURE_MISMATCH')
    const unreachable = await new DidResolver({
      insecureHosts: ['127.0.0.1:9'],
      allowPrivate: true,
      timeoutMs: 500,
    }).resolve('did:web:127.0.0.1%3A9')
    assert.equal(unreachable.error?.code, 'MESH_UNAVAILABLE')
  })

  it('refuses http for hosts not listed as insecure', () => {
    assert.equal(new DidResolver().documentUrl('did:web:example.com:a:b'), 'https://example.com/a/b/did.json')
  })
})
