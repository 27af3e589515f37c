import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { base58btc } from 'multiformats/bases/base58'
import {
  didFromPeerId,
  Ed25519KeyPair,
  HumanKeystore,
  peerIdFromDid,
  publicKeyFromDid,
  signCanonical,
  verifyCanonical,
  verifySignature,
} from '../../src/identity/index.ts'

const vectors = JSON.parse(
  await readFile(new URL('../fixtures/did-key/ed25519-x25519.json', import.meta.url), 'utf8'),
) as Record<
  string,
  { seed: string; verificationKeyPair: { publicKeyBase58?: string; publicKeyJwk?: { x: string } } }
>

describe('did:key', () => {
  it('matches every W3C CCG Ed25519 test vector', () => {
    const entries = Object.entries(vectors)
    assert.ok(entries.length >= 5)
    for (const [did, vector] of entries) {
      const key = new Ed25519KeyPair(Buffer.from(vector.seed, 'hex'))
      assert.equal(key.did, did)
      const { publicKeyBase58, publicKeyJwk } = vector.verificationKeyPair
      const expectedPub = publicKeyBase58
        ? base58btc.baseDecode(publicKeyBase58)
        : new Uint8Array(Buffer.from(publicKeyJwk?.x ?? '', 'base64url'))
      assert.equal(expectedPub.byteLength, 32)
      assert.deepEqual(publicKeyFromDid(did), expectedPub)
    }
  })

  it('is the same key as the libp2p PeerId', () => {
    const key = Ed25519KeyPair.generate()
    assert.equal(key.peerId().toString(), peerIdFromDid(key.did).toString())
    assert.equal(didFromPeerId(key.peerId()), key.did)
    assert.equal(didFromPeerId(key.peerId().toString()), key.did)
  })

  it('refuses DIDs that are not Ed25519 did:key', () => {
    for (const bad of ['did:web:example.com', 'did:key:zQ3sh', 'did:key:z6Mk!!', 'nope']) {
      assert.throws(() => publicKeyFromDid(bad), { code: 'MESH_BAD_REQUEST' })
    }
  })
})

describe('signatures', () => {
  const alice = Ed25519KeyPair.generate()
  const mallory = Ed25519KeyPair.generate()

  it('verify for the signer and fail for anyone else or any change', () => {
    const data = new TextEncoder().encode('hello mesh')
    const sig = alice.sign(data)
    assert.equal(verifySignature(alice.did, data, sig), true)
    assert.equal(verifySignature(mallory.did, data, sig), false)
    assert.equal(verifySignature(alice.did, new TextEncoder().encode('hello mess'), sig), false)
    assert.equal(verifySignature(alice.did, data, sig.subarray(1)), false)
    assert.equal(verifySignature('did:key:garbage', data, sig), false)
  })

  it('over canonical JSON do not depend on field order', () => {
    const sig = signCanonical(alice, { b: 1, a: [1, 2], c: { y: 1, x: 2 } })
    assert.equal(verifyCanonical(alice.did, { c: { x: 2, y: 1 }, a: [1, 2], b: 1 }, sig), true)
    assert.equal(verifyCanonical(alice.did, { c: { x: 2, y: 1 }, a: [2, 1], b: 1 }, sig), false)
    assert.equal(verifyCanonical(alice.did, { a: 1 }, 42), false)
  })
})

describe('human keystore', () => {
  it('writes keys with mode 0600 and reads them back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mesh-keys-'))
    const store = new HumanKeystore(dir)
    const key = await store.create('alice')
    const info = await stat(store.pathOf('alice'))
    assert.equal(info.mode & 0o777, 0o600)
    assert.equal((await store.load('alice')).did, key.did)
    await assert.rejects(store.create('alice'), { code: 'MESH_CONFLICT' })
    await assert.rejects(store.load('bob'), { code: 'MESH_NOT_FOUND' })
    assert.throws(() => store.pathOf('../etc/passwd'), { code: 'MESH_BAD_REQUEST' })
    await chmod(store.pathOf('alice'), 0o644)
    await assert.rejects(store.load('alice'), { code: 'MESH_BAD_REQUEST' })
  })
})
