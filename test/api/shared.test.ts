import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fromBase64url, toBase64url } from '../../src/api/base64url.ts'
import { isKnownKeyFormat, type KeyFile, keyFileOf } from '../../src/api/key-file.ts'
import { Ed25519Principal, extractToken, invocationToken } from '../../src/api/ucan.ts'
import { NodeEd25519Signer, ucantoSigner } from '../../src/auth/authority/index.ts'
import { HumanKeystore, readKeyFile } from '../../src/identity/index.ts'
import { service, startMesh } from '../auth/authority-fixtures.ts'
import { alice, mallory, tempDir } from '../fixtures/principals.ts'

// The browser-safe modules the console and the node share (src/api): each is held here
// against what the node did on its own before, so that the two sides cannot drift.

describe('the contract’s shared browser-safe code', () => {
  it('base64url: the same text as Buffer’s, both ways, at every length; refuses other alphabets', () => {
    for (let n = 0; n <= 70; n++) {
      const bytes = randomBytes(n)
      const text = toBase64url(bytes)
      assert.equal(text, bytes.toString('base64url'), `length ${n}`)
      assert.deepEqual(Buffer.from(fromBase64url(text)), bytes, `length ${n}`)
    }
    assert.throws(() => fromBase64url('ab+/'), /not base64url/)
    assert.throws(() => fromBase64url('abc='), /not base64url/)
  })

  it('key file: the node writes what keyFileOf makes, reads it back, and refuses other formats', async (t) => {
    const dir = await tempDir(t, 'mesh-api-keys-')
    const key = await new HumanKeystore(dir).create('ada')
    const path = join(dir, 'ada.json')
    const written = JSON.parse(await readFile(path, 'utf8')) as KeyFile
    const expected = keyFileOf('human', 'ada', Buffer.from(key.seed).toString('base64url'), key.did)
    assert.deepEqual({ ...written, createdAt: '' }, { ...expected, createdAt: '' })
    assert.ok(!Number.isNaN(Date.parse(written.createdAt)))
    assert.equal((await readKeyFile(path)).did, key.did)

    assert.ok(isKnownKeyFormat(written))
    assert.ok(!isKnownKeyFormat({ ...written, version: 2 as 1 }))
    assert.ok(!isKnownKeyFormat({ ...written, type: 'secp256k1' as 'Ed25519' }))
    const { seed: _seed, ...seedless } = written
    assert.ok(!isKnownKeyFormat(seedless))
  })

  it('UCAN: the node’s signer is the contract’s principal, and a chain signed through invocationToken verifies', async (t) => {
    const signer = ucantoSigner(alice)
    assert.ok(signer instanceof NodeEd25519Signer && signer instanceof Ed25519Principal)
    assert.equal(signer.did(), alice.did)
    assert.equal(signer.signatureAlgorithm, 'EdDSA')

    const mesh = await startMesh(t)
    const root = await extractToken(mesh.authority.rootDelegation()?.token as string)
    const meshDid = service.did
    const capability = { can: 'mesh/connect', with: meshDid, nb: { peer: mallory.did } }
    const token = await invocationToken(signer, meshDid, capability, [root])
    const ok = await mesh.authority.verifyAuthority(
      { ucan: token, can: 'mesh/connect', with: meshDid, nb: { peer: mallory.did } },
      { now: Date.now() },
    )
    assert.equal(ok.error, undefined, JSON.stringify(ok.error))
    assert.equal(ok.ok?.issuer, alice.did)
    // Without the proof the same act is refused: the contract signs, the node decides.
    const bare = await invocationToken(signer, meshDid, capability, [])
    const refused = await mesh.authority.verifyAuthority(
      { ucan: bare, can: 'mesh/connect', with: meshDid, nb: { peer: mallory.did } },
      { now: Date.now() },
    )
    assert.ok(refused.error !== undefined)
  })
})
