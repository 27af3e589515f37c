import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type MeshStatus, type PublicMesh, pageMeshes } from '../../src/registry/index.ts'

function mesh(name: string, did: string, status: MeshStatus = 'online'): PublicMesh {
  return {
    did: `did:key:z6Mk${did}`,
    name,
    peerId: `12D3KooW${did}`,
    multiaddrs: [],
    status,
    members: 1,
    bots: 0,
    rooms: 0,
    version: '0.1.0',
    protocolVersions: [],
    lastHeartbeat: new Date(0).toISOString(),
  }
}

const items = [
  mesh('gamma', 'G1'),
  mesh('Alpha', 'A1', 'idle'),
  mesh('beta', 'B2', 'offline'),
  mesh('beta', 'B1'),
  mesh('delta', 'D1', 'idle'),
  mesh('alpha', 'A2'),
  mesh('Epsilon', 'E1', 'offline'),
]

function everyPage(source: readonly PublicMesh[], limit: number, q?: string): PublicMesh[][] {
  const pages: PublicMesh[][] = []
  let cursor: string | undefined
  do {
    const page = pageMeshes(source, { limit, q, cursor })
    pages.push(page.meshes)
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined)
  return pages
}

describe('pageMeshes', () => {
  it('orders by case-folded name, then did, and pages with a cursor until nextCursor is null', () => {
    const pages = everyPage(items, 3)
    assert.deepEqual(
      pages.map((page) => page.map((m) => m.name)),
      [['Alpha', 'alpha', 'beta'], ['beta', 'delta', 'Epsilon'], ['gamma']],
    )
    assert.deepEqual(
      pages.flat().map((m) => m.did.slice(-2)),
      ['A1', 'A2', 'B1', 'B2', 'D1', 'E1', 'G1'],
    )
    assert.equal(pageMeshes(items, { limit: 7 }).nextCursor, null)
    assert.notEqual(pageMeshes(items, { limit: 6 }).nextCursor, null)
  })

  it('keeps its place when meshes come and go between pages', () => {
    const first = pageMeshes(items, { limit: 3 })
    const changed = [...items.filter((m) => m.name !== 'gamma'), mesh('aardvark', 'X1'), mesh('cobra', 'C1')]
    const rest = pageMeshes(changed, { limit: 10, cursor: first.nextCursor ?? undefined })
    assert.deepEqual(
      rest.meshes.map((m) => m.name),
      ['beta', 'cobra', 'delta', 'Epsilon'],
    )
  })

  it('searches name and did case-insensitively and filters by status', () => {
    assert.deepEqual(
      pageMeshes(items, { q: 'ALPH' }).meshes.map((m) => m.did.slice(-2)),
      ['A1', 'A2'],
    )
    assert.deepEqual(
      pageMeshes(items, { q: 'z6mkb' }).meshes.map((m) => m.did.slice(-2)),
      ['B1', 'B2'],
    )
    assert.deepEqual(
      pageMeshes(items, { status: 'idle' }).meshes.map((m) => m.name),
      ['Alpha', 'delta'],
    )
    assert.deepEqual(
      pageMeshes(items, { status: 'offline', q: 'e' }).meshes.map((m) => m.name),
      ['beta', 'Epsilon'],
    )
    assert.deepEqual(pageMeshes(items, { q: 'nothing like it' }), { meshes: [], nextCursor: null })
  })

  it('defaults to 50 a page and does not modify its input', () => {
    const many = Array.from({ length: 120 }, (_, i) => mesh(`mesh ${String(i).padStart(3, '0')}`, `M${i}`))
    const before = structuredClone(many)
    const page = pageMeshes(many)
    assert.equal(page.meshes.length, 50)
    assert.deepEqual(many, before)
    assert.equal(everyPage(many, 100).flat().length, 120)
  })

  it('refuses a bad limit, status or cursor with MESH_BAD_REQUEST', () => {
    const notAKey = Buffer.from(JSON.stringify({ name: 'a' })).toString('base64url')
    const bad = [
      { limit: 0 },
      { limit: 101 },
      { limit: 2.5 },
      { limit: Number.NaN },
      { status: 'asleep' as MeshStatus },
      { q: 'x'.repeat(129) },
      { cursor: '' },
      { cursor: 'not base64url!' },
      { cursor: Buffer.from('not json').toString('base64url') },
      { cursor: notAKey },
      { cursor: 'x'.repeat(513) },
    ]
    for (const query of bad) {
      assert.throws(() => pageMeshes(items, query), { code: 'MESH_BAD_REQUEST' }, JSON.stringify(query))
    }
  })
})
