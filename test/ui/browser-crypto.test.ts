import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type * as API from '@ucanto/interface'
import { roomResourceOf } from '../../src/auth/authority/index.ts'
import { Ed25519KeyPair, HumanKeystore, verifySignature } from '../../src/identity/index.ts'
import { beta, carol, service, startMesh } from '../auth/authority-fixtures.ts'
import { alice, bob, mallory, tempDir } from '../fixtures/principals.ts'

// The console's signing code is browser code (WebCrypto); Node 24 has the same
// WebCrypto, so it runs here unchanged. Imported by a computed path so the node's
// type check (which has no DOM types) does not pull the browser sources in.
interface BrowserKey {
  name: string
  did: string
  privateKey: CryptoKey
}
interface HumanKeyModule {
  keyFromSeed(seed: Uint8Array, name: string): Promise<BrowserKey>
  keyFromKeyFile(text: string): Promise<BrowserKey>
  generateKey(name: string): Promise<{ key: BrowserKey; file: { seed: string; did: string } }>
  sign(key: BrowserKey, bytes: Uint8Array): Promise<string>
}
interface UcanModule {
  ucantoSigner(key: BrowserKey): {
    did(): string
    signatureAlgorithm: string
    signatureCode: number
  }
  decodeToken(token: string): Promise<API.Delegation>
  signAct(
    key: BrowserKey,
    meshDid: string,
    act: Record<string, unknown>,
    proofs: API.Delegation[],
  ): Promise<string>
}
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const humanKey = (await import(ui('human-key.ts'))) as HumanKeyModule
const ucan = (await import(ui('ucan.ts'))) as UcanModule

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

  it('signs UCAN chains the node’s Authority verifies: each act, once, only for what it names; the key stays non-extractable', async (t) => {
    const mesh = await startMesh(t)
    const root = mesh.authority.rootDelegation()?.token as string
    const browser = await humanKey.keyFromSeed(seedOf(alice), 'alice')
    assert.equal(browser.privateKey.extractable, false)
    const proof = await ucan.decodeToken(root)
    const signer = ucan.ucantoSigner(browser)
    assert.equal(signer.did(), alice.did)
    assert.equal(signer.signatureAlgorithm, 'EdDSA')
    assert.equal(signer.signatureCode, 0xd0ed)

    const verify = (token: string, can: string, nb: Record<string, unknown>, resource = service.did) =>
      mesh.authority.verifyAuthority({ ucan: token, can, with: resource, nb }, { now: Date.now() })
    const connect = await ucan.signAct(browser, service.did, { can: 'mesh/connect', peer: mallory.did }, [
      proof,
    ])
    const ok = await verify(connect, 'mesh/connect', { peer: mallory.did })
    assert.equal(ok.error, undefined, JSON.stringify(ok.error))
    assert.equal(ok.ok?.issuer, alice.did)
    assert.equal(ok.ok?.humanInChain, alice.did)
    assert.deepEqual(ok.ok?.issuers, [alice.did, service.did])
    assert.equal((await verify(connect, 'mesh/connect', { peer: mallory.did })).error?.code, 'MESH_REPLAY')
    // Another subject than the one signed.
    const other = await ucan.signAct(browser, service.did, { can: 'mesh/connect', peer: bob.did }, [proof])
    assert.equal(
      (await verify(other, 'mesh/connect', { peer: mallory.did })).error?.code,
      'MESH_UCAN_INVALID',
    )

    for (const what of ['connection/accept', 'connection/decline', 'connection/disconnect'] as const) {
      const token = await ucan.signAct(browser, service.did, { can: what, connection: 'conn-1' }, [proof])
      assert.equal((await verify(token, what, { connection: 'conn-1' })).error, undefined)
    }
    // A room share is on the room; a DM on the mesh, naming the principal.
    const room = 'room-00000001'
    const share = await ucan.signAct(browser, service.did, { can: 'room/share', room, peer: beta.did }, [
      proof,
    ])
    assert.equal(
      (await verify(share, 'room/share', { peer: beta.did }, roomResourceOf(service.did, room))).error,
      undefined,
    )
    const wrongRoom = await ucan.signAct(browser, service.did, { can: 'room/share', room, peer: beta.did }, [
      proof,
    ])
    assert.equal(
      (
        await verify(
          wrongRoom,
          'room/share',
          { peer: beta.did },
          roomResourceOf(service.did, 'room-00000002'),
        )
      ).error?.code,
      'MESH_UCAN_INVALID',
    )
    const dm = await ucan.signAct(browser, service.did, { can: 'room/share', dm: carol.did }, [proof])
    assert.equal((await verify(dm, 'room/share', { peer: carol.did })).error, undefined)

    // Trust promotion by the architect, with a reason.
    const promote = await ucan.signAct(
      browser,
      service.did,
      { can: 'trust/promote', subject: carol.did, tier: 3, reason: 'helpful for a month' },
      [proof],
    )
    const record = await mesh.authority.promote(promote, carol.did, { now: Date.now() })
    assert.equal(record.tier, 3)
    assert.equal(record.tierChangedBy, alice.did)

    // Without the root delegation, or by a key it was not given to: refused.
    const bare = await ucan.signAct(browser, service.did, { can: 'mesh/connect', peer: mallory.did }, [])
    assert.ok((await verify(bare, 'mesh/connect', { peer: mallory.did })).error)
    const ada = (await humanKey.generateKey('ada')).key
    const byAda = await ucan.signAct(ada, service.did, { can: 'mesh/connect', peer: mallory.did }, [proof])
    assert.equal(
      (await verify(byAda, 'mesh/connect', { peer: mallory.did })).error?.code,
      'MESH_UCAN_INVALID',
    )
  })
})
