import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { listedName } from '../../src/cli/commands/rooms.ts'

// `mesh rooms` (issue 14): a DM is listed by who it is with, never by the stored `dm <did tail>@<mesh>`.
describe('mesh rooms lists', () => {
  it('a DM by the names of its other members', () => {
    const dm = { name: 'dm 3xKq9aZb@beta', with: [{ did: 'did:key:z6MkBob', name: '@bob:beta' }] }
    assert.equal(listedName(dm), 'dm with @bob:beta')
  })

  it('a DM whose other member has not joined yet by its stored name', () => {
    assert.equal(listedName({ name: 'dm 3xKq9aZb@beta', with: [] }), 'dm 3xKq9aZb@beta')
  })

  it('any other room by its name', () => {
    assert.equal(listedName({ name: 'general' }), 'general')
  })
})
