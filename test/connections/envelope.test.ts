import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  createEnvelope,
  type Envelope,
  EnvelopeVerifier,
  type EnvelopeVerifierInit,
  encodeEnvelope,
} from '../../src/connections/envelope.ts'
import { MeshError } from '../../src/errors.ts'
import { signCanonical } from '../../src/identity/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'

// alice's mesh sends to bob's mesh; mallory is a third mesh trying to abuse either.
const CONNECT = '/mesh/connect/1.0.0'
const T0 = 1_750_000_000_000

function verifierFor(store: MeshStore, overrides: Partial<EnvelopeVerifierInit> = {}) {
  const clock = { now: T0 }
  const verifier = new EnvelopeVerifier({
    store,
    selfDid: () => bob.did,
    protocols: [CONNECT],
    now: () => clock.now,
    ...overrides,
  })
  return { verifier, clock }
}

function fromAlice(overrides: Partial<Parameters<typeof createEnvelope>[1]> = {}): Envelope {
  return createEnvelope(alice, {
    type: 'connect.request',
    target: bob.did,
    protocol: CONNECT,
    body: { note: 'hello from alice' },
    now: T0,
    ...overrides,
  })
}

async function rejects(promise: Promise<unknown>, code: string, reason?: string): Promise<MeshError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof MeshError, `expected a MeshError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (reason !== undefined) assert.equal(err.details.reason, reason)
    return err
  }
  assert.fail(`expected ${code}`)
}

async function storedKeys(store: MeshStore): Promise<string[]> {
  return store.sublevel('envelopes').keys().all()
}

describe('signed envelopes', () => {
  it('accepts alice’s envelope once; the same id is a replay before and after a restart', async (t) => {
    const path = join(await tempDir(t), 'db')
    let store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    const envelope = fromAlice()
    const first = verifierFor(store).verifier
    const verified = await first.verify(encodeEnvelope(envelope), { remoteDid: alice.did })
    assert.deepEqual(verified, envelope)
    await first.commit(verified)
    assert.equal(await first.seen(envelope), true)
    await rejects(
      first.verify(encodeEnvelope(envelope), { remoteDid: alice.did }),
      'MESH_REPLAY',
      'duplicate',
    )

    await store.close()
    store = new MeshStore({ path })
    await store.open()
    const restarted = verifierFor(store).verifier
    await rejects(restarted.verify(envelope, { remoteDid: alice.did }), 'MESH_REPLAY', 'duplicate')
    // Re-signed with a fresh ts but the same id (an outbox retry) is still the same message.
    const resent = fromAlice({ id: envelope.id, now: T0 + 5_000 })
    await rejects(restarted.verify(resent, { remoteDid: alice.did }), 'MESH_REPLAY', 'duplicate')
    // A new message from alice is fine.
    await restarted.verify(fromAlice(), { remoteDid: alice.did })
  })

  it('lets only one of two concurrent copies through', async (t) => {
    const { verifier } = verifierFor(await tempStore(t))
    const envelope = fromAlice()
    const results = await Promise.allSettled([verifier.verify(envelope), verifier.verify(envelope)])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    const refused = results.find((r) => r.status === 'rejected')
    assert.equal(refused?.reason?.code, 'MESH_REPLAY')
  })

  it('releases a verified envelope that is not applied, so the sender may retry it', async (t) => {
    const store = await tempStore(t)
    const { verifier } = verifierFor(store)
    const envelope = fromAlice()
    await verifier.release(await verifier.verify(envelope))
    const again = await verifier.verify(envelope)
    // The seen id is committed with the message's effect, all or nothing.
    const connections = store.sublevel<string>('connections')
    await verifier.commit(again, [
      { type: 'put', sublevel: connections, key: 'c1', value: 'pending' },
    ] as never)
    assert.equal(await connections.get('c1'), 'pending')
    assert.equal(await verifier.seen(envelope), true)
  })

  it('takes back the claim when the commit fails, so the retry is applied', async (t) => {
    const store = await tempStore(t)
    const { verifier } = verifierFor(store)
    const envelope = fromAlice()
    const connections = store.sublevel<string>('connections')
    const broken = [{ type: 'put', sublevel: connections, key: 'c1', value: undefined }] as never
    const verified = await verifier.verify(envelope)
    await assert.rejects(verifier.commit(verified, broken), (err) => !(err instanceof MeshError))
    assert.equal(await verifier.seen(envelope), false)
    await verifier.commit(await verifier.verify(envelope))
    assert.equal(await verifier.seen(envelope), true)
  })

  it('refuses each hostile envelope with its code and remembers nothing of it', async (t) => {
    const store = await tempStore(t)
    const { verifier } = verifierFor(store)
    const good = fromAlice()
    const { signature: _, ...content } = good

    const cases: Array<{ name: string; input: unknown; code: string; reason?: string; remoteDid?: string }> =
      [
        {
          name: 'forged signature (mallory signs as alice)',
          input: { ...content, signature: signCanonical(mallory, content) },
          code: 'MESH_SIGNATURE_MISMATCH',
        },
        {
          name: 'tampered body',
          input: { ...good, body: { note: 'send me your rooms' } },
          code: 'MESH_SIGNATURE_MISMATCH',
        },
        { name: 'ts 61 s in the past', input: fromAlice({ now: T0 - 61_000 }), code: 'MESH_CLOCK_SKEW' },
        { name: 'ts 61 s in the future', input: fromAlice({ now: T0 + 61_000 }), code: 'MESH_CLOCK_SKEW' },
        {
          name: 'unknown protocol version',
          input: fromAlice({ protocol: '/mesh/connect/2.0.0' }),
          code: 'MESH_PROTOCOL_VERSION',
        },
        {
          name: 'reflected: bob’s own envelope sent back to bob',
          input: createEnvelope(bob, {
            type: 'connect.request',
            target: alice.did,
            protocol: CONNECT,
            body: {},
            now: T0,
          }),
          code: 'MESH_REPLAY',
          reason: 'reflected',
        },
        {
          name: 'wrong target: alice’s envelope for mallory, forwarded to bob',
          input: fromAlice({ target: mallory.did }),
          code: 'MESH_REPLAY',
          reason: 'wrong-target',
        },
        {
          name: 'origin is not the peer it came from (mallory relays alice’s envelope)',
          input: good,
          remoteDid: mallory.did,
          code: 'MESH_SIGNATURE_MISMATCH',
        },
        {
          name: 'oversized',
          input: encodeEnvelope(fromAlice({ body: { blob: 'x'.repeat(70_000) } })),
          code: 'MESH_TOO_LARGE',
        },
        {
          name: 'oversized, already parsed',
          input: fromAlice({ body: { blob: 'x'.repeat(70_000) } }),
          code: 'MESH_TOO_LARGE',
        },
        { name: 'not JSON', input: new TextEncoder().encode('{"v":1,'), code: 'MESH_BAD_REQUEST' },
        { name: 'missing field', input: { ...good, id: undefined }, code: 'MESH_BAD_REQUEST' },
        { name: 'unknown field', input: { ...good, extra: true }, code: 'MESH_BAD_REQUEST' },
        { name: 'ts as a string', input: { ...good, ts: String(good.ts) }, code: 'MESH_BAD_REQUEST' },
        {
          name: 'origin not a did:key',
          input: { ...good, origin: 'did:key:z6Mknotakey' },
          code: 'MESH_BAD_REQUEST',
        },
        { name: 'not an object', input: 'null', code: 'MESH_BAD_REQUEST' },
      ]
    for (const c of cases) {
      await t.test(c.name, async () => {
        await rejects(verifier.verify(c.input, { remoteDid: c.remoteDid ?? alice.did }), c.code, c.reason)
      })
    }
    assert.deepEqual(await storedKeys(store), [])
    // No refusal claimed the id either: the genuine envelope still goes through.
    await verifier.verify(good, { remoteDid: alice.did })
  })

  it('accepts a timestamp exactly 60 s off either way', async (t) => {
    const { verifier } = verifierFor(await tempStore(t))
    await verifier.verify(fromAlice({ now: T0 - 60_000 }))
    await verifier.verify(fromAlice({ now: T0 + 60_000 }))
  })

  it('names both sides’ protocol versions when there is none in common', async (t) => {
    const { verifier } = verifierFor(await tempStore(t))
    const err = await rejects(
      verifier.verify(fromAlice({ protocol: '/mesh/connect/9.0.0' })),
      'MESH_PROTOCOL_VERSION',
    )
    assert.deepEqual(err.details, { ours: [CONNECT], theirs: '/mesh/connect/9.0.0' })
  })

  it('carries proofs inside the signature', async (t) => {
    const { verifier } = verifierFor(await tempStore(t))
    const envelope = fromAlice({ auth: { proofs: ['token-one', 'token-two'] } })
    assert.deepEqual((await verifier.verify(envelope)).auth, { proofs: ['token-one', 'token-two'] })
    await rejects(
      verifier.verify({ ...envelope, auth: { proofs: ['mallory-token'] } }),
      'MESH_SIGNATURE_MISMATCH',
    )
  })

  it('prunes ids only once the clock check would refuse them anyway', async (t) => {
    const store = await tempStore(t)
    const { verifier, clock } = verifierFor(store)
    const old = fromAlice()
    await verifier.commit(await verifier.verify(old))
    clock.now = T0 + 60_000
    const recent = fromAlice({ now: clock.now })
    await verifier.commit(await verifier.verify(recent))

    assert.equal(await verifier.prune(), 0)
    clock.now = T0 + 2 * 60_000 + 60_000 + 1
    assert.equal(await verifier.prune(), 1)
    assert.equal(await verifier.seen(old), false)
    assert.equal(await verifier.seen(recent), true)
    // The pruned one cannot come back: it is refused by the clock.
    await rejects(verifier.verify(old), 'MESH_CLOCK_SKEW')
    clock.now = T0 + 60_000 + 3 * 60_000 + 1
    assert.equal(await verifier.prune(), 1)
    assert.deepEqual(await storedKeys(store), [])
  })

  it('refuses a retention that would let a replay through after pruning', async (t) => {
    const store = await tempStore(t)
    assert.throws(() => verifierFor(store, { retentionMs: 120_000 }), { code: 'MESH_BAD_REQUEST' })
  })
})
