import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ChainLink } from '../../src/auth/authority/chain-link.ts'
import { ChargeBook } from '../../src/auth/authority/charges.ts'
import type { AuthorityFailure } from '../../src/auth/authority/failure.ts'
import { alice, mallory } from '../fixtures/principals.ts'

const MESH = alice.did
const NOW = 1_700_000_000_000
const SKEW = 60

function invocation(cid: string, issuer = mallory.did, expiration = NOW / 1000 + 300): ChainLink {
  return { cid, issuer, audience: MESH, expiration, notBefore: undefined, proofs: [], view: {} as never }
}

const chainFailure: AuthorityFailure = {
  code: 'MESH_UCAN_INVALID',
  message: 'no proof',
  proof: 'ucan',
  details: {},
}

test('charges: the invoker of a refused chain is charged once per invocation', () => {
  const book = new ChargeBook({ meshDid: MESH, maxSkewSeconds: SKEW })
  assert.equal(book.accountable(invocation('a'), [chainFailure], false, NOW), mallory.did)
  // the same invocation posted again is charged nothing more
  assert.equal(book.accountable(invocation('a'), [chainFailure], false, NOW), undefined)
  assert.equal(book.accountable(invocation('b'), [chainFailure], false, NOW), mallory.did)
})

test('charges: nothing is charged without proof of who sent it', () => {
  const book = new ChargeBook({ meshDid: MESH, maxSkewSeconds: SKEW })
  // the mesh itself
  assert.equal(book.accountable(invocation('m', MESH), [chainFailure], false, NOW), undefined)
  // a did:web invoker whose signature was not checked
  assert.equal(book.accountable(invocation('w'), [chainFailure], true, NOW), undefined)
  // a failed DID or VC proof: the credentials beside a request are anyone's to attach
  for (const proof of ['did', 'vc'] as const) {
    const failures = [{ ...chainFailure, proof }, chainFailure]
    assert.equal(book.accountable(invocation(`p-${proof}`), failures, false, NOW), undefined)
  }
  // refusals that say nothing about what the invoker signed
  for (const code of ['MESH_REPLAY', 'MESH_BAD_REQUEST', 'MESH_UNAVAILABLE', 'MESH_INTERNAL'] as const) {
    assert.equal(
      book.accountable(invocation(`c-${code}`), [{ ...chainFailure, code }], false, NOW),
      undefined,
    )
  }
  assert.equal(book.size, 0)
})

test('charges: a full book forgets expired charges first, then its oldest tenth', () => {
  const book = new ChargeBook({ meshDid: MESH, maxSkewSeconds: SKEW, maxCharged: 10 })
  const past = NOW / 1000 - 3600
  for (let i = 0; i < 5; i++)
    book.accountable(invocation(`old${i}`, mallory.did, past), [chainFailure], false, NOW)
  for (let i = 0; i < 5; i++) book.accountable(invocation(`live${i}`), [chainFailure], false, NOW)
  assert.equal(book.size, 10)
  // full: the five expired ones go, nothing live is dropped
  assert.equal(book.accountable(invocation('next'), [chainFailure], false, NOW), mallory.did)
  assert.equal(book.size, 6)
  assert.equal(book.accountable(invocation('live0'), [chainFailure], false, NOW), undefined)
  for (let i = 0; i < 4; i++) book.accountable(invocation(`more${i}`), [chainFailure], false, NOW)
  assert.equal(book.size, 10)
  // full of live charges: the oldest one (a tenth of 10) goes, and may be charged once more
  assert.equal(book.accountable(invocation('last'), [chainFailure], false, NOW), mallory.did)
  assert.equal(book.size, 10)
  assert.equal(book.accountable(invocation('live0'), [chainFailure], false, NOW), mallory.did)
  assert.equal(book.accountable(invocation('live2'), [chainFailure], false, NOW), undefined)
})
