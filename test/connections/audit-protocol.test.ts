import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { checkInclusionProof, signTreeHead } from '../../src/audit/index.ts'
import {
  AuditProtocol,
  type AuditProtocolComponents,
  MESH_AUDIT_PROTOCOL,
} from '../../src/connections/index.ts'
import { loadKeyHistory } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import type { MeshLibp2p } from '../../src/p2p/index.ts'
import { mallory } from '../fixtures/principals.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import { connect } from '../rooms/helpers.ts'
import { startNode, type TestNode } from './nodes.ts'
import { json, rawExchange } from './raw-exchange.ts'

const codeOf = (code: string) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, code, String(err))
  return true
}

/** The asking half on `node` (no handler needed to ask). */
function askFrom(node: TestNode): AuditProtocol {
  return new AuditProtocol({
    libp2p: () => node.node.libp2p,
    peers: () => node.node.connections.peers(),
    audit: node.node.audit,
    logger: silentLogger(),
  })
}

/** Replaces the answering half the node wired with one over `audit` (a hostile mesh's). */
async function serveFrom(t: TestContext, node: TestNode, audit: AuditProtocolComponents['audit']) {
  await node.node.libp2p.unhandle(MESH_AUDIT_PROTOCOL)
  const protocol = new AuditProtocol({
    libp2p: () => node.node.libp2p,
    peers: () => node.node.connections.peers(),
    audit,
    logger: silentLogger(),
  })
  await protocol.start()
  t.after(() => protocol.stop())
}

/** The mesh key of `node` now, read from its data dir (what a forking mesh would sign with). */
const keyOf = async (node: TestNode) => (await loadKeyHistory(node.dataDir)).current

async function pair(t: TestContext, init: Parameters<typeof startNode>[2] = {}) {
  const a = await startNode(t, 'alpha', init)
  const b = await startNode(t, 'beta')
  await connect(a, b)
  await waitFor(
    async () => (await b.peers()).some((p) => p.did === a.node.did && p.state === 'accepted'),
    'b accepted',
  )
  return { a, b }
}

const raw = (libp2p: MeshLibp2p, to: TestNode, frame: Uint8Array) =>
  rawExchange(libp2p, to, MESH_AUDIT_PROTOCOL, [frame])

describe('/mesh/audit/1.0.0', () => {
  it('B fetches A’s head and checks that its own connection acceptance is in A’s log; a row that is not there fails', async (t) => {
    const { a, b } = await pair(t)
    const fromB = askFrom(b)

    const head = await fromB.head(a.node.did)
    assert.equal(head.mesh, a.node.did)
    assert.ok(head.size >= 2)

    const { head: rowsHead, proofs, next } = await fromB.rows(a.node.did)
    assert.equal(next, null)
    const accepted = proofs.find(
      (p) => p.row.action === 'federation.connection.accepted' && p.row.details.peer === b.node.did,
    )
    assert.ok(accepted, JSON.stringify(proofs.map((p) => p.row)))
    // Every row returned names B; none of A's own rows (policy, keys) came along.
    for (const p of proofs) assert.ok(JSON.stringify(p.row).includes(b.node.did))

    // A row that is not in A's log: the same proof with another row is refused.
    const forged = {
      ...accepted,
      row: { ...accepted.row, details: { ...accepted.row.details, by: 'nobody' } },
    }
    assert.throws(() => checkInclusionProof(forged, rowsHead), codeOf('MESH_PROOF_INVALID'))
  })

  it('consistency between two heads of A is fetched and checked; a forked head is refused', async (t) => {
    const { a, b } = await pair(t)
    const fromB = askFrom(b)
    const older = await fromB.head(a.node.did)
    for (let i = 0; i < 5; i++) await a.node.audit.append({ action: 'test.filler', details: { i } })
    const newer = await fromB.head(a.node.did)
    assert.equal(newer.size, older.size + 5)
    await fromB.consistency(a.node.did, older, newer)
    // A head of the same size with another root, signed by A's key: nothing joins it.
    const key = await keyOf(a)
    const forkedHead = signTreeHead(key, {
      mesh: a.node.did,
      size: newer.size,
      root: 'ab'.repeat(32),
      ts: new Date().toISOString(),
    })
    await assert.rejects(fromB.consistency(a.node.did, older, forkedHead), codeOf('MESH_PROOF_INVALID'))
  })

  it('a forged head from the peer is MESH_SIGNATURE_MISMATCH; a head of another mesh MESH_PROOF_INVALID', async (t) => {
    const { a, b } = await pair(t)
    const fromB = askFrom(b)
    const honest = a.node.audit.treeHead()
    let served = signTreeHead(mallory, {
      mesh: a.node.did,
      size: honest.size,
      root: honest.root,
      ts: honest.ts,
    })
    await serveFrom(t, a, {
      treeHead: () => served,
      consistencyProof: (from, to) => a.node.audit.consistencyProof(from, to),
      partyProofs: (dids, q) => a.node.audit.partyProofs(dids, q),
    })
    await assert.rejects(fromB.head(a.node.did), codeOf('MESH_SIGNATURE_MISMATCH'))
    // Signed by A's key, but of B's log.
    const key = await keyOf(a)
    served = signTreeHead(key, { mesh: b.node.did, size: 1, root: honest.root, ts: honest.ts })
    await assert.rejects(fromB.head(a.node.did), codeOf('MESH_PROOF_INVALID'))
  })

  it('a stranger is refused before anything is read; malformed and oversized requests are refused', async (t) => {
    const { a, b } = await pair(t)
    const stranger = await startHost(t)
    const answer = (await raw(stranger.libp2p, a, json({ op: 'head' }))) as { error: { code: string } }
    assert.equal(answer.error.code, 'MESH_NOT_CONNECTED')
    const fromB = askFrom(b)
    // A cursor past the log is an empty page, not an error.
    const page = await fromB.rows(a.node.did, 10 ** 9)
    assert.deepEqual([page.proofs.length, page.next], [0, null])
    // Oversized (the stream is cut, nothing answered) and malformed (answered MESH_BAD_REQUEST).
    const big = await raw(b.node.libp2p, a, json({ op: 'head', pad: 'x'.repeat(40_000) }))
    assert.ok(big instanceof Error, String(big))
    const bad = (await raw(b.node.libp2p, a, json({ op: 'rows', after: -1 }))) as { error: { code: string } }
    assert.equal(bad.error.code, 'MESH_BAD_REQUEST')
    // A request for a proof backwards: refused, and recorded against the peer.
    const now = a.node.audit.treeHead()
    await assert.rejects(
      fromB.consistency(a.node.did, now, { ...now, size: now.size - 1 }),
      codeOf('MESH_BAD_REQUEST'),
    )
    // Each refusal is recorded (after the answer) in the rejected log.
    await waitFor(async () => {
      const rejected = await a.api.get<{ entries: { kind: string; code: string }[] }>(
        '/api/federation/rejected',
      )
      const codes = rejected.entries.filter((e) => e.kind === 'audit.request').map((e) => e.code)
      return ['MESH_NOT_CONNECTED', 'MESH_BAD_REQUEST', 'MESH_TOO_LARGE'].every((c) => codes.includes(c))
        ? true
        : undefined
    }, 'refusals recorded')
  })

  it('a flooding peer is rate-limited', async (t) => {
    const { a, b } = await pair(t, { auditProtocol: { requestsPerMinute: 3 } })
    const fromB = askFrom(b)
    for (let i = 0; i < 3; i++) await fromB.head(a.node.did)
    await assert.rejects(fromB.head(a.node.did), codeOf('MESH_RATE_LIMITED'))
  })
})
