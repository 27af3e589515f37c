import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  decodeAct,
  encodeAct,
  HUMAN_ACTS,
  type HumanAct,
  HumanActVerifier,
  signAct,
  type VerifyActOptions,
} from '../../../src/auth/acts/index.ts'
import { createEnvelope, EnvelopeVerifier } from '../../../src/connections/envelope.ts'
import { MeshError } from '../../../src/errors.ts'
import { Ed25519KeyPair, signCanonical } from '../../../src/identity/index.ts'
import { MeshStore } from '../../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../../fixtures/principals.ts'

// alice is the architect of mesh A, bob the architect of mesh B; mallory is a human
// who is nobody's architect.
const meshA = new Ed25519KeyPair(Buffer.alloc(32, 0xa1))
const meshB = new Ed25519KeyPair(Buffer.alloc(32, 0xb2))
const T0 = 1_750_000_000_000
const T0s = T0 / 1000

const expectAccept = (overrides: Partial<VerifyActOptions> = {}): VerifyActOptions => ({
  audience: meshB.did,
  allowedIssuers: (did) => did === bob.did,
  act: HUMAN_ACTS.accept,
  subject: 'conn-1',
  ...overrides,
})

const bobAccepts = (overrides: Partial<Parameters<typeof signAct>[1]> = {}): HumanAct =>
  signAct(bob, { act: HUMAN_ACTS.accept, aud: meshB.did, with: 'conn-1', now: T0, ...overrides })

async function rejects(promise: Promise<unknown>, code: string): Promise<MeshError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof MeshError, `expected a MeshError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return err
  }
  assert.fail(`expected ${code}`)
}

describe('signed human acts', () => {
  it('accepts the architect’s act once, also across a restart', async (t) => {
    const path = join(await tempDir(t), 'db')
    let store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    const encoded = encodeAct(bobAccepts())
    const verifier = new HumanActVerifier({ store, now: () => T0 })
    const act = await verifier.verify(encoded, expectAccept())
    assert.equal(act.iss, bob.did)
    assert.deepEqual(decodeAct(encoded), act)
    await verifier.commit(act)
    await rejects(verifier.verify(encoded, expectAccept()), 'MESH_REPLAY')

    await store.close()
    store = new MeshStore({ path })
    await store.open()
    await rejects(
      new HumanActVerifier({ store, now: () => T0 }).verify(encoded, expectAccept()),
      'MESH_REPLAY',
    )
  })

  it('refuses each bad act with its code and spends no nonce', async (t) => {
    const store = await tempStore(t)
    const verifier = new HumanActVerifier({ store, now: () => T0 })
    const good = bobAccepts()
    const { sig: _, ...fields } = good
    const cases: Array<{
      name: string
      act: HumanAct | string
      code: string
      options?: Partial<VerifyActOptions>
    }> = [
      {
        name: 'signed by mallory, who is not the architect',
        act: signAct(mallory, { act: HUMAN_ACTS.accept, aud: meshB.did, with: 'conn-1', now: T0 }),
        code: 'MESH_FORBIDDEN',
      },
      {
        name: 'forged: mallory signs fields that claim bob',
        act: { ...fields, sig: signCanonical(mallory, fields) },
        code: 'MESH_SIGNATURE_MISMATCH',
      },
      {
        name: 'tampered nonce',
        act: { ...good, nonce: 'AAAAAAAAAAAAAAAAAAAAAA' },
        code: 'MESH_SIGNATURE_MISMATCH',
      },
      {
        name: 'expired 61 s ago',
        act: bobAccepts({ iat: T0s - 600, exp: T0s - 61 }),
        code: 'MESH_UCAN_INVALID',
      },
      { name: 'issued 61 s in the future', act: bobAccepts({ iat: T0s + 61 }), code: 'MESH_UCAN_INVALID' },
      { name: 'addressed to another mesh', act: bobAccepts({ aud: meshA.did }), code: 'MESH_UCAN_INVALID' },
      { name: 'about another connection', act: bobAccepts({ with: 'conn-2' }), code: 'MESH_UCAN_INVALID' },
      { name: 'another act', act: bobAccepts({ act: HUMAN_ACTS.disconnect }), code: 'MESH_UCAN_INVALID' },
      {
        name: 'lifetime beyond the maximum',
        act: bobAccepts({ iat: T0s, exp: T0s + 8 * 24 * 3600 }),
        code: 'MESH_UCAN_INVALID',
      },
      { name: 'exp before iat', act: bobAccepts({ iat: T0s, exp: T0s - 1 }), code: 'MESH_UCAN_INVALID' },
      { name: 'not base64url', act: 'not an act!', code: 'MESH_UCAN_INVALID' },
      {
        name: 'unknown field',
        act: Buffer.from(JSON.stringify({ ...good, extra: 1 })).toString('base64url'),
        code: 'MESH_UCAN_INVALID',
      },
      { name: 'not JSON', act: Buffer.from('{"act":').toString('base64url'), code: 'MESH_UCAN_INVALID' },
    ]
    for (const c of cases) {
      await t.test(c.name, async () => {
        await rejects(verifier.verify(c.act, expectAccept(c.options)), c.code)
      })
    }
    assert.deepEqual(await store.sublevel('envelopes').keys().all(), [])
    await verifier.verify(good, expectAccept())
  })

  it('accepts iat and exp exactly 60 s off', async (t) => {
    const verifier = new HumanActVerifier({ store: await tempStore(t), now: () => T0 })
    await verifier.verify(bobAccepts({ iat: T0s - 600, exp: T0s - 60 }), expectAccept())
    await verifier.verify(bobAccepts({ iat: T0s + 60 }), expectAccept())
  })

  it('asks an async issuer policy', async (t) => {
    const verifier = new HumanActVerifier({ store: await tempStore(t), now: () => T0 })
    const allowed = async (did: string) => did === alice.did
    await rejects(verifier.verify(bobAccepts(), expectAccept({ allowedIssuers: allowed })), 'MESH_FORBIDDEN')
  })

  it('travels in an envelope so the peer can check that a human on the other side decided', async (t) => {
    // alice asks mesh A to connect to mesh B; A forwards her act to B.
    const connect = signAct(alice, { act: HUMAN_ACTS.connect, aud: meshA.did, with: meshB.did, now: T0 })
    const envelope = createEnvelope(meshA, {
      type: 'connect.request',
      target: meshB.did,
      protocol: '/mesh/connect/1.0.0',
      body: {},
      auth: { proofs: [encodeAct(connect)] },
      now: T0,
    })
    const store = await tempStore(t)
    const envelopes = new EnvelopeVerifier({
      store,
      selfDid: () => meshB.did,
      protocols: ['/mesh/connect/1.0.0'],
      now: () => T0,
    })
    const acts = new HumanActVerifier({ store, now: () => T0 })
    const received = await envelopes.verify(envelope, { remoteDid: meshA.did })
    const proof = received.auth?.proofs[0] as string
    const act = await acts.verify(proof, {
      audience: received.origin,
      allowedIssuers: (did) => did === alice.did,
      act: HUMAN_ACTS.connect,
      subject: meshB.did,
    })
    // Both are remembered in one batch with the effect.
    await envelopes.commit(received, acts.nonceOperations(act))
    // A release after the commit does not un-spend the nonce.
    await acts.release(act)
    await rejects(
      acts.verify(proof, {
        audience: meshA.did,
        allowedIssuers: () => true,
        act: HUMAN_ACTS.connect,
        subject: meshB.did,
      }),
      'MESH_REPLAY',
    )
  })

  it('prunes nonces of acts expired long ago', async (t) => {
    const clock = { now: T0 }
    const verifier = new HumanActVerifier({ store: await tempStore(t), now: () => clock.now })
    const act = bobAccepts({ ttlSeconds: 60 })
    await verifier.commit(await verifier.verify(act, expectAccept()))
    assert.equal(await verifier.prune(), 0)
    clock.now = (act.exp + 181) * 1000
    assert.equal(await verifier.prune(), 1)
    await rejects(verifier.verify(act, expectAccept()), 'MESH_UCAN_INVALID')
  })
})
