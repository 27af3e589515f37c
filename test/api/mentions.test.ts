import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  findMentions,
  type MentionCandidate,
  resolveMentions,
  splitMentions,
} from '../../src/api/mentions.ts'

// Issue 14: one parser for the node and the console; local, local-with-own-mesh and foreign
// forms, and punctuation that is not taken into names.

const ALPHA = 'did:key:alpha-mesh'
const BETA = 'did:key:beta-mesh'
const OTHER_ALPHA = 'did:key:another-alpha' // a foreign mesh that is also named alpha

const members: MentionCandidate[] = [
  { did: 'a-arch', localId: 'alpha-architect', mesh: ALPHA, meshName: 'alpha' },
  { did: 'a-bob', localId: 'bob', mesh: ALPHA, meshName: 'alpha' },
  { did: 'b-arch', localId: 'beta-architect', mesh: BETA, meshName: 'beta' },
  { did: 'b-bob', localId: 'bob', mesh: BETA, meshName: 'beta' },
  { did: 'x-bob', localId: 'bob', mesh: OTHER_ALPHA, meshName: 'alpha' },
]

describe('findMentions', () => {
  const table: Array<[string, Array<[string, string?]>]> = [
    ['hello @bob', [['bob']]],
    ['@bob at the start', [['bob']]],
    ['hi @alpha-architect:alpha, welcome', [['alpha-architect', 'alpha']]],
    ['hello @beta-architect:beta', [['beta-architect', 'beta']]],
    ['thanks @bob.', [['bob']]],
    ['thanks @bob:beta.', [['bob', 'beta']]],
    ['ask @bob; or @carol!', [['bob'], ['carol']]],
    ['really @bob?', [['bob']]],
    ['(cc @bob)', [['bob']]],
    ['@bob: can you look', [['bob']]],
    ['@bob:beta: can you look', [['bob', 'beta']]],
    ['@bob:Beta', [['bob', 'beta']]],
    ['@bob:beta-, then', [['bob', 'beta']]],
    ['@bob.smith is here', [['bob.smith']]],
    ['mail bob@example.com', []],
    ['an @ alone, @@bob', [['bob']]],
    ['@bob,@carol:gamma', [['bob'], ['carol', 'gamma']]],
    ['nothing here', []],
    ['@.', []],
  ]
  for (const [body, expected] of table) {
    it(JSON.stringify(body), () => {
      assert.deepEqual(
        findMentions(body).map((t) => (t.mesh === undefined ? [t.name] : [t.name, t.mesh])),
        expected,
      )
    })
  }

  it('start and end cover exactly the mention', () => {
    const body = 'hi @alpha-architect:alpha, welcome @bob.'
    assert.deepEqual(
      findMentions(body).map((t) => body.slice(t.start, t.end)),
      ['@alpha-architect:alpha', '@bob'],
    )
  })
})

describe('resolveMentions', () => {
  const table: Array<[string, { did: string; name: string }, string[]]> = [
    // Posted on beta: the README's example.
    ['hello @beta-architect:beta', { did: BETA, name: 'beta' }, ['b-arch']],
    ['hello @beta-architect', { did: BETA, name: 'beta' }, ['b-arch']],
    ['hi @alpha-architect:alpha, welcome', { did: BETA, name: 'beta' }, ['a-arch']],
    // A local bob, never a foreign one of the same local id.
    ['@bob', { did: BETA, name: 'beta' }, ['b-bob']],
    ['@bob:beta', { did: BETA, name: 'beta' }, ['b-bob']],
    // Foreign meshes named alpha: both alpha bobs; on alpha itself, `:alpha` is the local bob only.
    ['@bob:alpha', { did: BETA, name: 'beta' }, ['a-bob', 'x-bob']],
    ['@bob:alpha', { did: ALPHA, name: 'alpha' }, ['a-bob']],
    ['@bob:gamma', { did: BETA, name: 'beta' }, []],
    ['@nobody', { did: BETA, name: 'beta' }, []],
    ['@bob @bob:beta @bob.', { did: BETA, name: 'beta' }, ['b-bob']],
  ]
  for (const [body, own, expected] of table) {
    it(`${JSON.stringify(body)} on ${own.name}`, () => {
      assert.deepEqual(resolveMentions(body, members, own), expected)
    })
  }
})

describe('splitMentions', () => {
  it('cuts a body into text and mentions, losing nothing', () => {
    const body = 'hi @alpha-architect:alpha, welcome'
    const parts = splitMentions(body)
    assert.deepEqual(
      parts.map((p) => (typeof p === 'string' ? p : `<${p.name}:${p.mesh}>`)),
      ['hi ', '<alpha-architect:alpha>', ', welcome'],
    )
    assert.equal(parts.map((p) => (typeof p === 'string' ? p : body.slice(p.start, p.end))).join(''), body)
  })
})
