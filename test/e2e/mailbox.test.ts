import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { DelegationList } from '../../src/api/index.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { MailboxStore, type StoredItem } from '../../src/mailbox/index.ts'
import { STORE_DIR, withMeshStore } from '../../src/mesh-info.ts'
import { type CliMesh, connectionView, type E2E, e2e, FAST_RETRY, freePort } from '../fixtures/e2e.ts'

// store and forward (SPEC §10): /mesh/mailbox/1.0.0 across processes, through the CLI.

type Mesh = CliMesh & { args: string[] }
type AuditPage = {
  entries: Array<{ action: string; subject: string | null; details: Record<string, unknown> }>
}

/** `mesh start` for `m` with its own arguments, on a new HTTP port, signed in as its architect. */
async function start(e: E2E, m: Mesh): Promise<void> {
  m.proc = await e.start([
    'start',
    ...['--data', m.dir, '--http', `127.0.0.1:${await freePort()}`],
    ...['--discovery-interval', '60000', ...FAST_RETRY, '--probe-interval', '0'],
    ...m.args,
  ])
  m.api = await e.signInArchitect(m.proc.http, m.name)
  m.did = m.proc.did as string
}

async function mesh(e: E2E, name: string, args: string[]): Promise<Mesh> {
  const m: Mesh = { name, dir: join(e.root, name), args }
  await e.init(name, m.dir)
  await start(e, m)
  return m
}

/** R (a relay with a mailbox, on a fixed port), A (reached only through R), C; C connects to A and A accepts. */
async function threeMeshes(e: E2E, relayArgs: string[]): Promise<{ r: Mesh; a: Mesh; c: Mesh }> {
  const r = await mesh(e, 'relay', [
    ...['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`, '--relay', ...relayArgs],
  ])
  const relayAddress = r.proc?.listen[0] as string
  const a = await mesh(e, 'alpha', ['--listen', '/p2p-circuit', '--relay-via', relayAddress])
  const c = await mesh(e, 'carol', ['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`])
  const address = a.proc?.listen.find((x) => x.includes('/p2p-circuit/')) as string
  const conn = await e.cli<{ id: string }>(c, 'connect', address)
  await waitFor(async () => (await connectionView(a, conn.id))?.status === 'pending', 'request at alpha')
  await e.cli(a, 'accept', conn.id)
  await waitFor(async () => (await connectionView(c, conn.id))?.status === 'accepted', 'accepted at carol')
  return { r, a, c }
}

/** C's architect delegates echo to a fresh key and revokes it with `reason`: one `ucan.revoked` for A. */
async function revokeOne(e: E2E, c: Mesh, reason: string): Promise<string> {
  const key = await e.cli<{ did: string }>(undefined, 'key', 'new', `k-${reason}`)
  const grant = await e.cli<{ cid: string; recorded: boolean }>(
    c,
    ...['delegate', key.did, 'agent/invoke', '--agent', 'echo', '--skill', 'echo'],
  )
  assert.equal(grant.recorded, true)
  const res = await e.cli<{ announcedTo: string[] }>(c, 'revoke', grant.cid, '--reason', reason)
  assert.equal(res.announcedTo.length, 1)
  return grant.cid
}

const auditRows = async (e: E2E, m: Mesh, action: string) =>
  (await e.cli<AuditPage>(m, 'audit', '--action', action, '--oldest', '--limit', '500')).entries.filter(
    (x) => x.action === action,
  )

/** `m`'s audit rows of `action`, oldest first, once there are at least `n`. */
const rowsOnceThere = (e: E2E, m: Mesh, action: string, n: number, what: string) =>
  waitFor(async () => {
    const rows = await auditRows(e, m, action)
    return rows.length >= n ? rows : undefined
  }, what)

/** What R keeps for `recipient`, read from its LevelDB (R stopped). */
async function keptAtRelay(r: Mesh, recipient: string): Promise<StoredItem[]> {
  return withMeshStore(r.dir, async (store) => {
    const items: StoredItem[] = []
    for await (const [key, value] of store.sublevel('mailbox').iterator()) {
      if (key.startsWith(`item/1/${recipient}/`)) items.push(value as StoredItem)
    }
    return items
  })
}

describe('store and forward across processes (SPEC §10)', () => {
  it('A offline: C’s messages wait at R sealed (no plaintext in R’s LevelDB, kept across R’s restart); A returns and takes each exactly once, in order; a replayed or forged item is refused', async (t) => {
    const e = await e2e(t, 'mesh-mailbox-e2e-', { logLevel: 'info' })
    const { r, a, c } = await threeMeshes(e, [])
    const aDid = a.did as string
    await a.proc?.stop('SIGTERM')

    // Three revocations at C while A is away: each reaches R's mailbox for A, not A.
    const reasons = ['first-secret-reason', 'second-secret-reason', 'third-secret-reason']
    const cids: string[] = []
    for (const reason of reasons) cids.push(await revokeOne(e, c, reason))
    const parked = await rowsOnceThere(e, c, 'federation.mailbox.parked', 3, 'three messages parked at R')
    assert.equal(parked.length, 3)
    assert.ok(parked.every((row) => row.subject !== null && row.details.peer === aDid))
    const peers = await (c.api as HttpClient).get<Array<{ did: string; queued: number }>>(
      '/api/federation/peers',
    )
    assert.equal(peers.find((p) => p.did === aDid)?.queued ?? 0, 0, 'parked: out of C’s outbox')

    // R stops: its store holds three sealed items for A, and no plaintext anywhere in its files.
    await r.proc?.stop('SIGTERM')
    const kept = await keptAtRelay(r, aDid)
    assert.equal(kept.length, 3)
    assert.ok(kept.every((s) => s.item.origin === c.did && s.item.recipient === aDid))
    const storeDir = join(r.dir, STORE_DIR)
    const files = await readdir(storeDir)
    assert.ok(files.some((f) => f.endsWith('.log') || f.endsWith('.ldb')))
    for (const file of files) {
      const content = await readFile(join(storeDir, file)).catch(() => Buffer.alloc(0))
      for (const s of [...reasons, ...cids])
        assert.ok(!content.includes(Buffer.from(s)), `${file} holds ${s}`)
    }
    for (const s of kept) for (const x of [...reasons, ...cids]) assert.ok(!JSON.stringify(s).includes(x))

    // R and then A return: A takes the three, in order, each once; R deletes them on A's acks.
    await start(e, r)
    await start(e, a)
    const revoked = await rowsOnceThere(e, a, 'ucan.revoked', 3, 'A takes the three revocations')
    assert.deepEqual(
      revoked.map((row) => row.details.reason),
      reasons,
    )
    assert.deepEqual(
      revoked.map((row) => row.subject),
      cids,
    )
    const held = (await (a.api as HttpClient).get<DelegationList>('/api/auth/delegations')).revocations
    for (const cid of cids) assert.equal(held.find((x) => x.cid === cid)?.mesh, c.did)
    const taken = a.proc?.logs.filter((l) => l.event === 'mailbox.taken') ?? []
    assert.equal(taken.length, 3)
    // Exactly once, also against a relay that cheats: with both stopped, R's store gets a copy
    // of an item A took (a replay) and one of C's items with its expiry moved (a forgery).
    await a.proc?.stop('SIGTERM')
    await r.proc?.stop('SIGTERM')
    assert.deepEqual(await keptAtRelay(r, aDid), [])
    const [first, second] = kept as [StoredItem, StoredItem]
    await withMeshStore(r.dir, async (store) => {
      const mailboxes = new MailboxStore({ store })
      await mailboxes.open()
      await mailboxes.deposit(first.item)
      await mailboxes.deposit({ ...second.item, expiresAt: second.item.expiresAt + 1 })
    })
    await start(e, r)
    await start(e, a)
    const refusedRows = await rowsOnceThere(
      e,
      a,
      'federation.mailbox.refused',
      2,
      'A refuses the replayed and the forged item',
    )
    assert.deepEqual(
      refusedRows.map((row) => [row.details.item, row.details.code]),
      [
        [first.item.id, 'MESH_REPLAY'],
        [second.item.id, 'MESH_SIGNATURE_MISMATCH'],
      ],
    )
    await waitFor(
      async () => (a.proc?.logs ?? []).some((l) => l.event === 'mailbox.collected'),
      'A collected',
    )
    assert.equal((a.proc?.logs ?? []).filter((l) => l.event === 'mailbox.taken').length, 0)
    assert.equal((await auditRows(e, a, 'ucan.revoked')).length, 3)
    assert.equal((await e.cli<{ ok: boolean }>(a, 'audit', '--verify')).ok, true)
  })

  it('R refuses beyond the quota with MESH_QUOTA_EXCEEDED and drops items after its TTL', async (t) => {
    const e = await e2e(t, 'mesh-mailbox-quota-e2e-', { logLevel: 'info' })
    const { r, a, c } = await threeMeshes(e, ['--mailbox-items', '2'])
    const aDid = a.did as string
    await a.proc?.stop('SIGTERM')
    for (const reason of ['q1', 'q2', 'q3']) await revokeOne(e, c, reason)
    // The third waits in C's outbox: R's mailbox for A is full, and C's peer record says so.
    await waitFor(async () => {
      const peers = await (c.api as HttpClient).get<
        Array<{ did: string; lastError: { code: string } | null }>
      >('/api/federation/peers')
      return peers.find((p) => p.did === aDid)?.lastError?.code === 'MESH_QUOTA_EXCEEDED'
    }, 'C hears MESH_QUOTA_EXCEEDED from R')
    assert.equal((await auditRows(e, c, 'federation.mailbox.parked')).length, 2)
    const refused = (r.proc?.logs ?? []).find((l) => l.event === 'mailbox.refused')
    assert.equal(refused?.code, 'MESH_QUOTA_EXCEEDED')

    // R restarts with a 1 s TTL (it applies to what it keeps): the two are dropped, the third
    // (retried by C) takes their place, and is dropped in its turn.
    await r.proc?.stop('SIGTERM')
    r.args = [...r.args, '--mailbox-ttl', '1000', '--mailbox-prune', '200']
    await start(e, r)
    await waitFor(
      async () => (await auditRows(e, c, 'federation.mailbox.parked')).length === 3,
      'the third is parked once room is made',
    )
    await waitFor(
      async () =>
        (r.proc?.logs ?? [])
          .filter((l) => l.event === 'mailbox.dropped')
          .reduce((n, l) => n + Number(l.items), 0) === 3,
      'R drops all three after its TTL',
    )
    await c.proc?.stop('SIGTERM')
    await r.proc?.stop('SIGTERM')
    assert.deepEqual(await keptAtRelay(r, aDid), [])
  })
})
