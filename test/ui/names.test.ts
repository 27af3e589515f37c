import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

// The console's names (browser code, run here on Node): issue 14, names instead of bare dids.
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const { meshNameOf, dmName } = (await import(
  ui('names.ts')
)) as typeof import('../../src/ui/src/lib/names.ts')

const own = { did: 'did:key:z6Mkown', name: 'alpha' }
const connections = [
  { peerDid: 'did:key:z6Mkbeta', peerKeyDid: 'did:key:z6Mkbeta2', peerName: 'beta' },
  { peerDid: 'did:key:z6Mkgamma', peerKeyDid: 'did:key:z6Mkgamma', peerName: null },
]

describe('names instead of dids in the console (issue 14)', () => {
  it('names a mesh: this one, a peer by its identity or its current key, none when unknown', () => {
    assert.equal(meshNameOf(own.did, own, connections), 'alpha')
    assert.equal(meshNameOf('did:key:z6Mkbeta', own, connections), 'beta')
    assert.equal(meshNameOf('did:key:z6Mkbeta2', own, connections), 'beta')
    assert.equal(meshNameOf('did:key:z6Mkgamma', own, connections), undefined)
    assert.equal(meshNameOf(undefined, own, connections), undefined)
  })

  it('names a DM by its other members, its stored name while they are unknown', () => {
    const room = { name: 'dm abcdefgh@beta' }
    const members = [
      { did: 'did:key:me', name: '@me' },
      { did: 'did:key:bob', name: '@bob:beta' },
      { did: 'did:key:old', name: '@old:beta', role: 'removed' },
    ]
    assert.equal(dmName(room, members, 'did:key:me'), '@bob:beta')
    assert.equal(dmName(room, undefined, 'did:key:me'), 'dm abcdefgh@beta')
    assert.equal(dmName(room, [members[0] as (typeof members)[number]], 'did:key:me'), 'dm abcdefgh@beta')
  })
})
