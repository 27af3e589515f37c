/**
 * The verifier's fast paths (lean CAR reader, signed bytes built without dag-json, the
 * delegation cache) must decide exactly as the slow ones: same blocks and keys, same
 * signed bytes, and a warm cache that still re-checks revocation, time, audience,
 * alignment and replays.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CAR, CBOR, Delegation, UCAN } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import {
  ChainVerifier,
  DidResolver,
  decodeToken,
  encodeToken,
  issueDelegation,
  issueInvocation,
} from '../../src/auth/authority/index.ts'
import { ucantoSigner } from '../../src/auth/authority/principal.ts'
import { signedBytes } from '../../src/auth/authority/signed-bytes.ts'
import { cidString } from '../../src/auth/authority/token.ts'
import {
  alice,
  bob,
  delegate,
  delegationOf,
  HOUR,
  invoke,
  mallory,
  NOW,
  NOW_S,
  room,
  service,
  startMesh,
} from './authority-fixtures.ts'

const post = (id = 'lobby') => ({ can: 'room/post', with: room(id) })

/** The bytes dag-ucan itself verifies the signature over. */
function libraryBytes(view: API.Delegation): Uint8Array {
  let captured: Uint8Array | undefined
  UCAN.verifySignature(view.data, {
    did: () => view.issuer.did(),
    verify: (payload: Uint8Array) => {
      captured = payload
      return true
    },
  } as never)
  assert.ok(captured)
  return captured
}

function fastBytes(view: API.Delegation): Buffer | undefined {
  const model = (view.data as unknown as { model: Parameters<typeof signedBytes>[0] }).model
  return signedBytes(model, view.issuer.did(), view.audience.did())
}

async function chainToken(
  depth: number,
  exp = NOW_S + HOUR,
): Promise<{ token: string; proofs: API.Delegation[] }> {
  const keys = [alice, bob, alice, bob, alice, bob, alice, bob]
  let holder = service
  let proof: API.Delegation | undefined
  const proofs: API.Delegation[] = []
  for (let i = 0; i < depth; i++) {
    const next = keys[i] as typeof alice
    proof = await issueDelegation({
      issuer: holder,
      audience: next.did,
      capabilities: [{ can: 'room/post', with: service.did }],
      expiration: exp,
      proofs: proof === undefined ? [] : [proof],
      nonce: `n${i}`,
    })
    proofs.push(proof)
    holder = next
  }
  const token = await encodeToken(
    await issueInvocation({
      issuer: holder,
      audience: service.did,
      capability: post(),
      expiration: NOW_S + 600,
      proofs: proof === undefined ? [] : [proof],
    }),
  )
  return { token, proofs }
}

describe('signed bytes without dag-json', () => {
  it('are byte for byte what dag-ucan signs, for every shape of plain caveats and facts', async () => {
    const cases: Array<{ nb?: Record<string, unknown>; nbf?: number; nonce?: string; facts?: unknown[] }> = [
      {},
      { nb: { peer: 'did:key:z6Mk', limit: 10, negative: -3, flag: true, off: false, none: null } },
      { nb: { nested: { b: [1, 2, { z: 'x', a: 'y' }], a: {} }, list: [] } },
      { nb: { text: 'quote " backslash \\ newline \n tab \t nul \u0000 é 日本 🙂 \u2028' } },
      { nb: { 'key with "quotes"': 1, Zed: 2, alpha: 3, '10': 4, '9': 5, é: 6 } },
      { nbf: NOW_S - 10, nonce: 'abc' },
      { nonce: '' },
      { facts: [{ origin: 'test', n: 1 }, { list: ['a', 'b'] }] },
    ]
    for (const c of cases) {
      const view = await issueDelegation({
        issuer: alice,
        audience: bob.did,
        capabilities: [{ can: 'room/post', with: room(), ...(c.nb === undefined ? {} : { nb: c.nb }) }],
        expiration: NOW_S + HOUR,
        ...(c.nbf === undefined ? {} : { notBefore: c.nbf }),
        ...(c.nonce === undefined ? {} : { nonce: c.nonce }),
      })
      const withFacts =
        c.facts === undefined
          ? view
          : await UCAN.issue({
              issuer: ucantoSigner(alice) as never,
              audience: { did: () => bob.did } as never,
              capabilities: view.capabilities as never,
              expiration: NOW_S + HOUR,
              facts: c.facts as never,
            }).then(
              (ucan: UCAN.View) => ({ data: ucan, issuer: ucan.issuer, audience: ucan.audience }) as never,
            )
      const fast = fastBytes(withFacts)
      assert.ok(fast, `fast path taken for ${JSON.stringify(c)}`)
      assert.deepEqual(new Uint8Array(fast), new Uint8Array(libraryBytes(withFacts)), JSON.stringify(c))
    }
  })

  it('proofs are listed as dag-ucan lists them (several, in order)', async () => {
    const { proofs } = await chainToken(3)
    const a = proofs[0] as API.Delegation
    const b = proofs[1] as API.Delegation
    const view = await issueDelegation({
      issuer: alice,
      audience: bob.did,
      capabilities: [{ can: 'room/post', with: service.did }],
      expiration: NOW_S + HOUR,
      proofs: [b, a],
    })
    assert.deepEqual(new Uint8Array(fastBytes(view) as Buffer), new Uint8Array(libraryBytes(view)))
  })

  it('leaves bytes, links and floats to dag-ucan', async () => {
    const { proofs } = await chainToken(1)
    for (const nb of [
      { data: new Uint8Array([1, 2]) },
      { link: (proofs[0] as API.Delegation).cid },
      { ratio: 0.5 },
    ]) {
      const view = await issueDelegation({
        issuer: alice,
        audience: bob.did,
        capabilities: [{ can: 'room/post', with: room(), nb }],
        expiration: NOW_S + HOUR,
      })
      assert.equal(fastBytes(view), undefined)
      // and the verifier still verifies it through dag-ucan
      const verifier = new ChainVerifier({ resolver: new DidResolver() })
      const decoded = verifier.decode(await encodeToken(view))
      assert.equal(decoded.error, undefined)
      assert.equal(
        await verifier.checkInvoker((decoded.ok as NonNullable<typeof decoded.ok>).invocation),
        undefined,
      )
    }
  })
})

describe('lean CAR reader', () => {
  it('yields the blocks and root the library reader yields, keyed as CID.toString()', async () => {
    for (const depth of [0, 1, 4]) {
      const { token } = await chainToken(depth)
      const lean = decodeToken(token)
      assert.equal(lean.error, undefined)
      const { ok } = lean as { ok: NonNullable<typeof lean.ok> }
      const library = CAR.decode(new Uint8Array(Buffer.from(token, 'base64url')))
      assert.deepEqual([...ok.blocks.keys()].sort(), [...library.blocks.keys()].sort())
      for (const [key, block] of ok.blocks) {
        assert.equal(block.cid.toString(), key)
        assert.equal(cidString(block.cid.bytes), key)
        assert.deepEqual(
          new Uint8Array(block.bytes),
          new Uint8Array((library.blocks.get(key) as API.Block).bytes),
        )
      }
      const variant = CBOR.decode((library.roots[0] as API.Block).bytes) as Record<string, API.Link>
      assert.equal(ok.root.cid.toString(), String(variant['ucan@0.9.1']))
      assert.equal(ok.rootKey, ok.root.cid.toString())
    }
  })

  it('refuses a flipped byte anywhere in the archive, never returning other bytes under a known CID', async () => {
    const { token } = await chainToken(2)
    const bytes = Buffer.from(token, 'base64url')
    const original = decodeToken(token).ok as NonNullable<ReturnType<typeof decodeToken>['ok']>
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes)
      copy[i] = (copy[i] as number) ^ 0x01
      const decoded = decodeToken(copy.toString('base64url'))
      if (decoded.error !== undefined) continue
      // a flip that still decodes can only have renamed things, never changed a known CID's bytes
      for (const [key, block] of decoded.ok.blocks) {
        const known = original.blocks.get(key)
        if (known !== undefined) assert.deepEqual(new Uint8Array(block.bytes), new Uint8Array(known.bytes))
      }
    }
  })

  it('refuses truncation, trailing garbage, non-minimal varints and foreign codecs', async () => {
    const { token } = await chainToken(1)
    const bytes = Buffer.from(token, 'base64url')
    for (const cut of [1, 2, 10, 40, bytes.length - 1]) {
      assert.ok(decodeToken(bytes.subarray(0, bytes.length - cut).toString('base64url')).error, `cut ${cut}`)
    }
    assert.ok(decodeToken(Buffer.concat([bytes, Buffer.from([5, 1, 2])]).toString('base64url')).error)
    assert.ok(decodeToken(Buffer.concat([bytes, Buffer.from([0])]).toString('base64url')).error)
    // the header length as a non-minimal varint (0x80 | n, 0x00)
    const header = bytes[0] as number
    assert.ok(header < 0x80)
    const padded = Buffer.concat([Buffer.from([header | 0x80, 0x00]), bytes.subarray(1)])
    assert.ok(decodeToken(padded.toString('base64url')).error)
    // a raw-codec (0x55) block under its own correct sha-256
    const car = decodeToken(token).ok as NonNullable<ReturnType<typeof decodeToken>['ok']>
    const firstKey = [...car.blocks.keys()][0] as string
    const cidBytes = (car.blocks.get(firstKey) as API.Block).cid.bytes
    const at = bytes.indexOf(Buffer.from(cidBytes))
    const raw = Buffer.from(bytes)
    raw[at + 1] = 0x55
    assert.match(decodeToken(raw.toString('base64url')).error?.message ?? '', /does not match its CID/)
  })
})

describe('a warm delegation cache re-checks everything but the signature', () => {
  const expected = { can: 'room/post', with: room() }

  it('honours a revocation made after the chain was cached', async () => {
    const revoked = new Set<string>()
    const verifier = new ChainVerifier({ resolver: new DidResolver(), isRevoked: (cid) => revoked.has(cid) })
    const { token, proofs } = await chainToken(2)
    assert.equal(
      (await verifier.verify(token, expected, { audience: service.did, now: NOW })).error,
      undefined,
    )
    assert.ok(verifier.cacheStats().size >= 2)
    revoked.add(String((proofs[0] as API.Delegation).cid))
    const verdict = await verifier.verify(token, expected, { audience: service.did, now: NOW })
    assert.equal(verdict.error?.details.reason, 'revoked')
  })

  it('honours expiry, not-before and audience on cached links', async () => {
    const verifier = new ChainVerifier({ resolver: new DidResolver() })
    const { token } = await chainToken(2, NOW_S + 120)
    assert.equal(
      (await verifier.verify(token, expected, { audience: service.did, now: NOW })).error,
      undefined,
    )
    const hits = verifier.cacheStats().hits
    // the invocation itself lives 600 s; the cached proofs expire first
    const later = await verifier.verify(token, expected, { audience: service.did, now: NOW + 200_000 })
    assert.equal(later.error?.details.reason, 'expired')
    const elsewhere = await verifier.verify(token, expected, { audience: alice.did, now: NOW })
    assert.equal(elsewhere.error?.details.reason, 'audience')
    const again = await verifier.verify(token, expected, { audience: service.did, now: NOW })
    assert.equal(again.error, undefined)
    assert.ok(verifier.cacheStats().hits > hits, 'the second verification used the cache')
  })

  it('honours not-before on a cached link', async () => {
    const verifier = new ChainVerifier({ resolver: new DidResolver() })
    const grant = await issueDelegation({
      issuer: service,
      audience: bob.did,
      capabilities: [{ can: 'room/post', with: service.did }],
      expiration: NOW_S + HOUR,
      notBefore: NOW_S + 100,
    })
    const token = await encodeToken(
      await issueInvocation({
        issuer: bob,
        audience: service.did,
        capability: post(),
        expiration: NOW_S + 900,
        proofs: [grant],
      }),
    )
    const at = (now: number) => verifier.verify(token, expected, { audience: service.did, now })
    assert.equal((await at(NOW + 200_000)).error, undefined)
    assert.equal(verifier.cacheStats().size, 1)
    const early = await at(NOW)
    assert.equal(early.error?.details.reason, 'not-yet-valid')
    assert.equal(early.error?.code, 'MESH_CLOCK_SKEW')
  })

  it('a cached proof does not align with a holder it was not delegated to', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, bob.did, [post()], [root])
    await authority.verifyAuthority({ ucan: await invoke(bob, post(), [grant]), ...post() })
    // mallory presents bob's (cached) grant as her own proof
    const verdict = await authority.verifyAuthority({
      ucan: await invoke(mallory, post(), [grant]),
      ...post(),
    })
    assert.equal((verdict as { error?: { details: { reason: string } } }).error?.details.reason, 'alignment')
  })

  it('replays are refused with a warm cache', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, bob.did, [post()], [root])
    const first = await invoke(bob, post(), [grant])
    assert.equal((await authority.verifyAuthority({ ucan: first, ...post() })).error, undefined)
    const second = await invoke(bob, post(), [grant])
    assert.equal((await authority.verifyAuthority({ ucan: second, ...post() })).error, undefined)
    const replay = await authority.verifyAuthority({ ucan: first, ...post() })
    assert.equal(replay.error?.code, 'MESH_REPLAY')
  })

  it('a tampered block under a cached CID is refused at decode', async () => {
    const verifier = new ChainVerifier({ resolver: new DidResolver() })
    const grant = await issueDelegation({
      issuer: service,
      audience: bob.did,
      capabilities: [{ can: 'room/post', with: room('lobby') }],
      expiration: NOW_S + HOUR,
    })
    const good = await encodeToken(
      await issueInvocation({
        issuer: bob,
        audience: service.did,
        capability: post(),
        expiration: NOW_S + 600,
        proofs: [grant],
      }),
    )
    assert.equal(
      (await verifier.verify(good, expected, { audience: service.did, now: NOW })).error,
      undefined,
    )
    const bytes = Buffer.from(good, 'base64url')
    const at = bytes.indexOf(Buffer.from(grant.bytes))
    const inner = Buffer.from(grant.bytes).indexOf(Buffer.from('lobby'))
    bytes.write('vault', at + inner)
    const verdict = await verifier.verify(bytes.toString('base64url'), expected, {
      audience: service.did,
      now: NOW,
    })
    assert.equal(verdict.error?.details.reason, 'malformed')
    assert.match(verdict.error?.message ?? '', /does not match its CID/)
  })

  it('a forged signature on a never-seen delegation is refused even when its issuer is cached', async () => {
    const verifier = new ChainVerifier({ resolver: new DidResolver() })
    const { token } = await chainToken(1)
    assert.equal(
      (await verifier.verify(token, expected, { audience: service.did, now: NOW })).error,
      undefined,
    )
    const grant = await issueDelegation({
      issuer: service,
      audience: alice.did,
      capabilities: [{ can: 'room/post', with: service.did }],
      expiration: NOW_S + HOUR,
      nonce: 'forged',
    })
    // re-sign nothing: flip the signature inside the block and re-address it (a new CID)
    const data = CBOR.decode(grant.bytes) as unknown as Record<string, unknown>
    const s = Uint8Array.from(data.s as Uint8Array)
    s[s.length - 1] = (s[s.length - 1] as number) ^ 0xff
    const forged = delegationOf(
      await encodeToken(
        Delegation.create({
          root: await CBOR.write({ ...data, s } as never),
        }) as never,
      ),
    )
    const invocation = await encodeToken(
      await issueInvocation({
        issuer: alice,
        audience: service.did,
        capability: post(),
        expiration: NOW_S + 600,
        proofs: [forged],
      }),
    )
    const verdict = await verifier.verify(invocation, expected, { audience: service.did, now: NOW })
    assert.equal(verdict.error?.code, 'MESH_SIGNATURE_MISMATCH')
  })
})
