import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  type AuditCheckpoint,
  type AuditPage,
  type AuditRow,
  type AuditVerifyReport,
  CHECKPOINT_FILE,
  signCheckpoint,
} from '../../src/audit/index.ts'
import { type ConnectionView, createEnvelope, MESH_CONNECT_PROTOCOL } from '../../src/connections/index.ts'
import { STORE_DIR } from '../../src/mesh-info.ts'
import { MeshStore } from '../../src/store/index.ts'
import { mallory } from '../fixtures/principals.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import {
  decide,
  encodeEnvelope,
  listenOf,
  requestConnection,
  sendRaw,
  startNode,
  statusAt,
  type TestNode,
} from './nodes.ts'

const entryKey = (seq: number): string => `entry/v1/${String(seq).padStart(16, '0')}`

async function accepted(a: TestNode, b: TestNode): Promise<string> {
  const id = await requestConnection(a, b)
  await waitFor(
    async () => ((await statusAt(b, id))?.status === 'pending' ? true : undefined),
    'pending at b',
  )
  await decide(b, id, 'accept')
  await waitFor(async () => {
    const [x, y] = await Promise.all([statusAt(a, id), statusAt(b, id)])
    return x?.status === 'accepted' && y?.status === 'accepted' ? ([x, y] as ConnectionView[]) : undefined
  }, 'accepted on both sides')
  return id
}

/** With the node stopped: the attacker cuts its audit log back to `size` rows and rolls the head back with it. */
async function rollBackStore(node: TestNode, size: number): Promise<void> {
  const store = new MeshStore({ path: join(node.dataDir, STORE_DIR) })
  await store.open()
  try {
    const sub = store.sublevel<unknown>('audit')
    const last = (await sub.get(entryKey(size))) as AuditRow
    const removed: string[] = []
    for await (const key of sub.keys({ gt: entryKey(size), lt: 'entry/v1/~' })) removed.push(key)
    assert.ok(removed.length > 0)
    await sub.batch([
      ...removed.map((key) => ({ type: 'del' as const, key })),
      { type: 'put', key: 'head/v1', value: { seq: size, hash: last.hash } },
    ])
  } finally {
    await store.close()
  }
}

const verify = (node: TestNode) => node.api.get<AuditVerifyReport>('/api/audit/verify')

describe('audit checkpoints between two in-process meshes', () => {
  it('a peer holding an earlier checkpoint catches a truncation with a rolled-back head that both local copies hide', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    await accepted(a, b)

    const early = await a.api.get<AuditCheckpoint>('/api/audit/checkpoint')
    for (let i = 0; i < 5; i++) await a.node.audit.append({ action: 'test.filler', details: { i } })
    assert.deepEqual(await a.node.connections.exchangeCheckpoints(), [b.node.did])
    const held = await b.node.audit.peerCheckpoint(a.node.did)
    assert.ok(held !== undefined && held.checkpoint.size >= early.size + 5, JSON.stringify(held))
    assert.equal(held.conflict, null)
    // beta's checkpoint came back in the reply: alpha holds it too.
    assert.ok(((await a.node.audit.peerCheckpoint(b.node.did))?.checkpoint.size ?? 0) > 0)

    // The attacker, with the whole data dir: store cut back to `early`, and the local
    // checkpoint file rolled back to that (genuinely signed) earlier checkpoint.
    await a.stop()
    await rollBackStore(a, early.size)
    await writeFile(join(a.dataDir, CHECKPOINT_FILE), JSON.stringify(early))
    await a.restart()
    assert.equal((await verify(a)).ok, true, 'nothing local shows the rollback')

    assert.deepEqual(await a.node.connections.exchangeCheckpoints(), [b.node.did])
    // beta: a later checkpoint shorter than the one it holds, recorded with both.
    const after = await b.node.audit.peerCheckpoint(a.node.did)
    assert.equal(after?.conflict?.relation, 'shorter')
    assert.equal(after?.checkpoint.size, held.checkpoint.size)
    const rows = await b.api.get<AuditPage>('/api/audit?action=federation.peer.audit_rollback')
    assert.equal(rows.entries.length, 1)
    assert.equal(rows.entries[0]?.details.peer, a.node.did)
    // alpha: beta handed back what it holds; alpha's log no longer extends it.
    const report = await verify(a)
    assert.equal(report.ok, false)
    assert.ok(
      report.problems.some((p) => p.kind === 'rolled-back' && /truncated or rolled back/.test(p.message)),
      JSON.stringify(report.problems),
    )
    assert.ok(a.lines.some((l) => l.event === 'audit.rollback_detected'))
  })

  it('the rolled-back mesh also learns it when the peer starts the exchange', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    await accepted(a, b)
    const early = a.node.audit.checkpoint()
    for (let i = 0; i < 3; i++) await a.node.audit.append({ action: 'test.filler', details: { i } })
    assert.deepEqual(await b.node.connections.exchangeCheckpoints(), [a.node.did])
    const held = await b.node.audit.peerCheckpoint(a.node.did)
    assert.equal(held?.checkpoint.size, a.node.audit.head()?.seq)

    // On the same address, so that beta reaches it where it knows it.
    const listen = listenOf(a.node)
    await a.stop()
    await rollBackStore(a, early.size)
    await writeFile(join(a.dataDir, CHECKPOINT_FILE), JSON.stringify(early))
    await a.restart({ listen })
    assert.equal((await verify(a)).ok, true)

    await b.node.audit.append({ action: 'test.filler' })
    assert.deepEqual(await b.node.connections.exchangeCheckpoints(), [a.node.did])
    const report = await verify(a)
    assert.equal(report.ok, false)
    assert.ok(
      report.problems.some((p) => p.kind === 'rolled-back'),
      JSON.stringify(report.problems),
    )
    assert.equal((await b.node.audit.peerCheckpoint(a.node.did))?.conflict?.relation, 'shorter')
  })

  it('untouched logs swap checkpoints and stay ok; nothing is resent while nothing changed', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    await accepted(a, b)
    assert.deepEqual(await a.node.connections.exchangeCheckpoints(), [b.node.did])
    assert.deepEqual(await b.node.connections.exchangeCheckpoints(), [a.node.did])
    assert.deepEqual(await b.node.connections.exchangeCheckpoints(), [], 'beta’s log did not change')
    await a.node.audit.append({ action: 'test.filler' })
    assert.deepEqual(await a.node.connections.exchangeCheckpoints(), [b.node.did])
    assert.equal((await verify(a)).ok, true)
    assert.equal((await verify(b)).ok, true)
    assert.equal((await b.node.audit.peerCheckpoint(a.node.did))?.checkpoint.size, a.node.audit.head()?.seq)
  })

  it('refuses a checkpoint from a mesh without an accepted connection, keeping nothing', async (t) => {
    const b = await startNode(t, 'beta')
    const { libp2p } = await startHost(t, { key: mallory })
    const checkpoint = {
      mesh: mallory.did,
      size: 0,
      head: '0'.repeat(64),
      ts: new Date().toISOString(),
      signer: mallory.did,
    }
    const envelope = createEnvelope(mallory, {
      type: 'audit.checkpoint',
      target: b.node.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: { connectionId: 'a'.repeat(32), checkpoint: signCheckpoint(mallory, checkpoint), held: null },
    })
    const reply = await sendRaw(libp2p, b, encodeEnvelope(envelope))
    assert.equal(reply.type, 'connect.error')
    assert.equal(reply.body.code, 'MESH_NOT_CONNECTED')
    assert.equal(await b.node.audit.peerCheckpoint(mallory.did), undefined)
  })
})
