import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { HumanActVerifier } from '../../src/connections/human-act.ts'
import { decodeAct, HUMAN_ACTS } from '../../src/connections/index.ts'
import { Ed25519KeyPair, HumanKeystore, verifySignature } from '../../src/identity/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'

// The console's signing code is browser code (WebCrypto); Node 24 has the same
// WebCrypto, so it runs here unchanged. Imported by a computed path so the node's
// type check (which has no DOM types) does not pull the browser sources in.
interface BrowserKey {
  name: string
  did: string
  privateKey: unknown
}
interface HumanKeyModule {
  keyFromSeed(seed: Uint8Array, name: string): Promise<BrowserKey>
  keyFromKeyFile(text: string): Promise<BrowserKey>
  generateKey(name: string): Promise<{ key: BrowserKey; file: { seed: string; did: string } }>
  sign(key: BrowserKey, bytes: Uint8Array): Promise<string>
}
interface ActsModule {
  signAct(key: BrowserKey, options: { act: string; aud: string; with: string }): Promise<string>
  HUMAN_ACTS: Record<string, string>
}
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const humanKey = (await import(ui('human-key.ts'))) as HumanKeyModule
const acts = (await import(ui('acts.ts'))) as ActsModule

const seedOf = (k: Ed25519KeyPair) => Buffer.from(k.seed)

describe('console crypto (browser code) agrees with the node', () => {
  it('a seed gives the same did:key in WebCrypto as in the node', async () => {
    for (const k of [alice, bob, mallory, Ed25519KeyPair.generate()]) {
      const browser = await humanKey.keyFromSeed(seedOf(k), 'x')
      assert.equal(browser.did, k.did)
    }
  })

  it('imports a keystore file written by the node, and refuses a tampered or a mesh key file', async (t) => {
    const dir = await tempDir(t, 'mesh-ui-keys-')
    const keystore = new HumanKeystore(dir)
    const key = await keystore.create('alpha-architect')
    const { readFile } = await import('node:fs/promises')
    const text = await readFile(join(dir, 'alpha-architect.json'), 'utf8')
    const imported = await humanKey.keyFromKeyFile(text)
    assert.equal(imported.did, key.did)
    assert.equal(imported.name, 'alpha-architect')

    const tampered = JSON.stringify({ ...JSON.parse(text), did: mallory.did })
    await assert.rejects(humanKey.keyFromKeyFile(tampered), /corrupt/)
    const meshFile = JSON.stringify({ ...JSON.parse(text), role: 'mesh' })
    await assert.rejects(humanKey.keyFromKeyFile(meshFile), /mesh key/)
    await assert.rejects(humanKey.keyFromKeyFile('not json'), /not JSON/)
  })

  it('signs the session challenge so that the node verifies it', async () => {
    const browser = await humanKey.keyFromSeed(seedOf(alice), 'alice')
    const text = `mesh-session:${bob.did}:nonce-123`
    const sig = await humanKey.sign(browser, new TextEncoder().encode(text))
    assert.ok(verifySignature(alice.did, new TextEncoder().encode(text), Buffer.from(sig, 'base64url')))
    assert.ok(!verifySignature(mallory.did, new TextEncoder().encode(text), Buffer.from(sig, 'base64url')))
  })

  it('makes acts the node verifies, once; a generated key signs too', async (t) => {
    const store = await tempStore(t)
    const verifier = new HumanActVerifier({ store })
    const meshDid = bob.did
    const browser = await humanKey.keyFromSeed(seedOf(alice), 'alice')
    assert.deepEqual(acts.HUMAN_ACTS.connect, HUMAN_ACTS.connect)
    assert.deepEqual(acts.HUMAN_ACTS.roomShare, HUMAN_ACTS.roomShare)

    const encoded = await acts.signAct(browser, { act: HUMAN_ACTS.connect, aud: meshDid, with: mallory.did })
    const decoded = decodeAct(encoded)
    assert.equal(decoded.iss, alice.did)
    assert.equal(decoded.exp - decoded.iat, 600)
    const options = {
      audience: meshDid,
      allowedIssuers: (did: string) => did === alice.did,
      act: HUMAN_ACTS.connect,
      subject: mallory.did,
    }
    const act = await verifier.verify(encoded, options)
    await verifier.commit(act)
    await assert.rejects(verifier.verify(encoded, options), { code: 'MESH_REPLAY' })

    // A different subject than the one signed is refused.
    const other = await acts.signAct(browser, { act: HUMAN_ACTS.connect, aud: meshDid, with: alice.did })
    await assert.rejects(verifier.verify(other, options), { code: 'MESH_UCAN_INVALID' })

    const made = await humanKey.generateKey('ada')
    assert.equal(new Ed25519KeyPair(Buffer.from(made.file.seed, 'base64url')).did, made.key.did)
    const byAda = await acts.signAct(made.key, { act: HUMAN_ACTS.accept, aud: meshDid, with: 'conn-1' })
    await verifier.verify(byAda, {
      audience: meshDid,
      allowedIssuers: (did) => did === made.key.did,
      act: HUMAN_ACTS.accept,
      subject: 'conn-1',
    })
  })
})
