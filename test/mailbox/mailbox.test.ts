import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { exchange } from '../../src/connections/connect-protocol.ts'
import { MeshError } from '../../src/errors.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  checkMailboxItem,
  createMailboxItem,
  MailboxClient,
  type MailboxItem,
  MailboxRelay,
  type MailboxRelayInit,
  MESH_MAILBOX_PROTOCOL,
  open,
  relayOf,
  seal,
} from '../../src/mailbox/index.ts'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/p2p/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'
import { captureLogger, waitFor } from '../p2p/nodes.ts'

// store and forward (SPEC §10): /mesh/mailbox/1.0.0 with real libp2p hosts on loopback and real LevelDB.

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8')
const bytes = (s: string) => new TextEncoder().encode(s)

interface Relay {
  key: Ed25519KeyPair
  libp2p: MeshLibp2p
  dir: string
  store: MeshStore
  relay: MailboxRelay
  addr: string
  /** Stops the mailbox service and closes its store (the host stays up). */
  halt(): Promise<void>
  /** Opens the store again and starts a new mailbox service on it. */
  resume(init?: MailboxRelayInit): Promise<void>
}

async function startRelay(t: TestContext, init: MailboxRelayInit = {}): Promise<Relay> {
  const key = Ed25519KeyPair.generate()
  const dir = await tempDir(t, 'mesh-mailbox-relay-')
  const libp2p = await createMeshLibp2p({ key })
  t.after(() => libp2p.stop())
  const r = { key, libp2p, dir, addr: `${libp2p.getMultiaddrs()[0]}` } as Relay
  r.resume = async (more: MailboxRelayInit = init) => {
    r.store = new MeshStore({ path: dir })
    await r.store.open()
    r.relay = new MailboxRelay({ libp2p: () => libp2p, store: r.store, logger: captureLogger().logger }, more)
    await r.relay.start()
  }
  r.halt = async () => {
    await r.relay.stop()
    await r.store.close()
  }
  await r.resume(init)
  t.after(async () => {
    if (r.store !== undefined) await r.halt().catch(() => {})
  })
  return r
}

interface Mesh {
  key: Ed25519KeyPair
  libp2p: MeshLibp2p
  store: MeshStore
  client: MailboxClient
  taken: string[]
  refused: Array<{ code: string; id: string; origin: string }>
  stop(): Promise<void>
}

/** A mesh (host, store, mailbox client) with `relays`; what it takes lands in `taken`. */
async function startMesh(
  t: TestContext,
  relays: string[],
  opts: { key?: Ed25519KeyPair; dir?: string } = {},
): Promise<Mesh & { dir: string }> {
  const key = opts.key ?? Ed25519KeyPair.generate()
  const dir = opts.dir ?? (await tempDir(t, 'mesh-mailbox-'))
  const store = new MeshStore({ path: dir })
  await store.open()
  const libp2p = await createMeshLibp2p({ key })
  const m = { key, libp2p, store, dir, taken: [] as string[], refused: [] } as unknown as Mesh & {
    dir: string
  }
  m.client = new MailboxClient(
    {
      libp2p: () => libp2p,
      key: () => key,
      store,
      logger: captureLogger().logger,
      relays: () => relays,
      deliver: async (plaintext) => {
        m.taken.push(text(plaintext))
        return { ok: true }
      },
      onRefused: async (r) => void m.refused.push(r),
    },
    { pollIntervalMs: 0 },
  )
  let stopped = false
  m.stop = async () => {
    if (stopped) return
    stopped = true
    await m.client.stop()
    await libp2p.stop()
    await store.close()
  }
  t.after(() => m.stop())
  return m
}

async function refusal(promise: Promise<unknown>): Promise<MeshError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof MeshError, String(err))
    return err
  }
  assert.fail('expected a refusal')
}

describe('mailbox: sealed items (SPEC §10)', () => {
  it('a sealed box opens with the recipient key only, and not once altered', () => {
    const a = Ed25519KeyPair.generate()
    const b = Ed25519KeyPair.generate()
    const box = seal(a.did, bytes('for a only'))
    assert.equal(text(open(a, box)), 'for a only')
    assert.ok(!Buffer.from(box).includes(Buffer.from('for a only')))
    assert.throws(() => open(b, box), { code: 'MESH_SIGNATURE_MISMATCH' })
    const altered = Uint8Array.from(box)
    altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 1
    assert.throws(() => open(a, altered), { code: 'MESH_SIGNATURE_MISMATCH' })
    assert.throws(() => open(a, box.subarray(0, 40)), { code: 'MESH_BAD_REQUEST' })
  })

  it('an item is signed by its origin over sealed bytes, recipient, id and expiry: any change fails', () => {
    const c = Ed25519KeyPair.generate()
    const a = Ed25519KeyPair.generate()
    const item = createMailboxItem(c, a.did, bytes('hello'), { expiresAt: Date.now() + 60_000 })
    assert.equal(checkMailboxItem(item).id, item.id)
    const other = Ed25519KeyPair.generate()
    for (const forged of [
      { ...item, recipient: other.did },
      { ...item, expiresAt: item.expiresAt + 1 },
      { ...item, id: 'A'.repeat(22) },
      { ...item, sealed: Buffer.from(seal(a.did, bytes('swapped'))).toString('base64url') },
      { ...item, origin: other.did },
    ]) {
      assert.throws(() => checkMailboxItem(forged), { code: 'MESH_SIGNATURE_MISMATCH' })
    }
    assert.throws(() => checkMailboxItem({ ...item, extra: 1 }), { code: 'MESH_BAD_REQUEST' })
    assert.throws(() => createMailboxItem(c, a.did, new Uint8Array(64 * 1024 + 1), { expiresAt: 1 }), {
      code: 'MESH_BAD_REQUEST',
    })
    assert.equal(relayOf('/ip4/1.2.3.4/tcp/1/p2p/R/p2p-circuit/p2p/A'), '/ip4/1.2.3.4/tcp/1/p2p/R')
    assert.equal(relayOf('/ip4/1.2.3.4/tcp/1/p2p/A'), undefined)
  })
})

describe('mailbox: a relay keeps items for a mesh that is away (SPEC §10)', () => {
  it('C’s items wait at R encrypted (no plaintext in R’s LevelDB), survive R’s restart, and A takes each exactly once, in order', async (t) => {
    const r = await startRelay(t)
    const a1 = await startMesh(t, [r.addr])
    // A asks R for a mailbox, then goes away.
    assert.equal(await a1.client.collect(r.addr), 0)
    assert.equal(await r.relay.mailboxes.registered(a1.key.did), true)
    const { key: aKey, dir: aDir } = a1
    await a1.stop()

    const c = await startMesh(t, [])
    const secrets = Array.from({ length: 5 }, (_, i) => `secret message ${i} ${'x'.repeat(100)}`)
    for (const s of secrets) await c.client.park(aKey.did, [r.addr], bytes(s))
    assert.deepEqual(await r.relay.mailboxes.usage(aKey.did), {
      items: 5,
      bytes: (await r.relay.mailboxes.list(aKey.did)).reduce((n, s) => n + s.bytes, 0),
    })

    // What R keeps, read back from its store, and then its LevelDB files once it stops: no plaintext.
    for await (const value of r.store.sublevel('mailbox').values()) {
      assert.ok(!JSON.stringify(value).includes('secret message'))
    }
    await r.halt()
    for (const file of await readdir(r.dir)) {
      const content = await readFile(join(r.dir, file)).catch(() => Buffer.alloc(0))
      for (const s of secrets)
        assert.ok(!content.includes(Buffer.from('secret message')), `${file} holds ${s}`)
    }
    await r.resume()
    assert.equal((await r.relay.mailboxes.list(aKey.did)).length, 5, 'kept across the relay’s restart')

    // A returns (same key, same store): it takes the five, in order, and R deletes each on its ack.
    const a2 = await startMesh(t, [r.addr], { key: aKey, dir: aDir })
    await a2.client.start()
    await waitFor(() => a2.taken.length === 5, 'A takes its five items')
    assert.deepEqual(a2.taken, secrets)
    // The last ack follows the last delivery.
    await waitFor(
      async () => (await r.relay.mailboxes.usage(aKey.did)).items === 0,
      'R deletes them on A’s acks',
    )
    assert.deepEqual(await r.relay.mailboxes.usage(aKey.did), { items: 0, bytes: 0 })
    assert.equal(await a2.client.collect(r.addr), 0)
    assert.deepEqual(a2.taken, secrets, 'exactly once')
  })

  it('R refuses items beyond the quota (items, bytes) with MESH_QUOTA_EXCEEDED, and for a mesh with no mailbox there', async (t) => {
    const r = await startRelay(t, { maxItems: 2, maxBytes: 4096 })
    const a = await startMesh(t, [r.addr])
    await a.client.collect(r.addr)
    const c = await startMesh(t, [])
    await c.client.park(a.key.did, [r.addr], bytes('one'))
    await c.client.park(a.key.did, [r.addr], bytes('two'))
    const full = await refusal(c.client.park(a.key.did, [r.addr], bytes('three')))
    assert.equal(full.code, 'MESH_QUOTA_EXCEEDED')
    assert.equal(full.status, 429)
    assert.equal(full.details.items, 2)
    // Taken: room again.
    await a.client.collect(r.addr)
    assert.deepEqual(a.taken, ['one', 'two'])
    const big = await refusal(c.client.park(a.key.did, [r.addr], new Uint8Array(4000)))
    assert.equal(big.code, 'MESH_QUOTA_EXCEEDED', 'bytes')
    // Nobody asked for a mailbox for this one.
    const stranger = Ed25519KeyPair.generate()
    assert.equal((await refusal(c.client.park(stranger.did, [r.addr], bytes('x')))).code, 'MESH_NOT_FOUND')
  })

  it('R keeps at most maxMailboxes mailboxes and maxTotalBytes for all of them (MESH_QUOTA_EXCEEDED)', async (t) => {
    const r = await startRelay(t, { maxMailboxes: 2, maxTotalBytes: 3000 })
    const a = await startMesh(t, [r.addr])
    await a.client.collect(r.addr)
    await r.relay.mailboxes.register(Ed25519KeyPair.generate().did)
    const third = await refusal(r.relay.mailboxes.register(Ed25519KeyPair.generate().did))
    assert.equal(third.code, 'MESH_QUOTA_EXCEEDED')
    await r.relay.mailboxes.register(a.key.did) // already there: fine
    const c = await startMesh(t, [])
    await c.client.park(a.key.did, [r.addr], new Uint8Array(1000))
    const full = await refusal(c.client.park(a.key.did, [r.addr], new Uint8Array(1000)))
    assert.equal(full.code, 'MESH_QUOTA_EXCEEDED')
    assert.equal(full.details.maxTotalBytes, 3000)
    // Counted again after a restart of the relay (from its store), and freed by the acks.
    await r.halt()
    await r.resume({ maxMailboxes: 2, maxTotalBytes: 3000 })
    assert.equal(
      (await refusal(c.client.park(a.key.did, [r.addr], new Uint8Array(1000)))).code,
      'MESH_QUOTA_EXCEEDED',
    )
    assert.equal(await a.client.collect(r.addr), 1)
    await c.client.park(a.key.did, [r.addr], new Uint8Array(1000))
  })

  it('R drops items after its TTL; A, back later, takes nothing', async (t) => {
    let now = Date.now()
    const r = await startRelay(t, { ttlMs: 60_000, now: () => now })
    const a = await startMesh(t, [r.addr])
    await a.client.collect(r.addr)
    const c = await startMesh(t, [])
    await c.client.park(a.key.did, [r.addr], bytes('stale'))
    assert.equal((await r.relay.mailboxes.usage(a.key.did)).items, 1)
    now += 60_001
    assert.equal(await r.relay.prune(), 1)
    assert.equal((await r.relay.mailboxes.list(a.key.did)).length, 0)
    assert.equal(await a.client.collect(r.addr), 0)
    assert.deepEqual(a.taken, [])
  })

  it('A refuses a forged item and a replayed one (audited), and takes the good ones between them', async (t) => {
    const r = await startRelay(t)
    const a = await startMesh(t, [r.addr])
    await a.client.collect(r.addr)
    const c = Ed25519KeyPair.generate()
    const expiresAt = Date.now() + 60_000
    const good = createMailboxItem(c, a.key.did, bytes('good 1'), { expiresAt })
    await r.relay.mailboxes.deposit(good)
    assert.equal(await a.client.collect(r.addr), 1)
    // The relay (the adversary here) keeps a copy and serves it again: a replay.
    await r.relay.mailboxes.deposit(good)
    // …forges an item in C's name (signed by itself),
    const forged: MailboxItem = {
      ...createMailboxItem(r.key, a.key.did, bytes('forged'), { expiresAt }),
      origin: c.did,
    }
    await r.relay.mailboxes.deposit(forged)
    // …re-addresses one of C's items to A, and alters one's sealed bytes.
    const other = createMailboxItem(c, Ed25519KeyPair.generate().did, bytes('not for a'), { expiresAt })
    await r.relay.mailboxes.deposit({ ...other, recipient: a.key.did })
    const altered = createMailboxItem(c, a.key.did, bytes('altered'), { expiresAt })
    const sealed = Buffer.from(altered.sealed, 'base64url')
    sealed[sealed.length - 1] = (sealed[sealed.length - 1] as number) ^ 1
    await r.relay.mailboxes.deposit({ ...altered, sealed: sealed.toString('base64url') })
    // A good one behind them still arrives.
    await r.relay.mailboxes.deposit(createMailboxItem(c, a.key.did, bytes('good 2'), { expiresAt }))
    assert.equal(await a.client.collect(r.addr), 1)
    assert.deepEqual(a.taken, ['good 1', 'good 2'])
    assert.deepEqual(
      a.refused.map((x) => x.code),
      ['MESH_REPLAY', 'MESH_SIGNATURE_MISMATCH', 'MESH_SIGNATURE_MISMATCH', 'MESH_SIGNATURE_MISMATCH'],
    )
    assert.equal(a.refused[0]?.id, good.id)
    // Every one was acknowledged: nothing is left to block the mailbox.
    assert.equal((await r.relay.mailboxes.usage(a.key.did)).items, 0)
    // The replay guard holds across a restart of A.
    const { key, dir } = a
    await a.stop()
    await r.relay.mailboxes.deposit(good)
    const back = await startMesh(t, [r.addr], { key, dir })
    assert.equal(await back.client.collect(r.addr), 0)
    assert.deepEqual(
      back.refused.map((x) => x.code),
      ['MESH_REPLAY'],
    )
  })

  it('a message the node cannot take now (it throws) stays at R, in its place, for the next collection', async (t) => {
    const r = await startRelay(t)
    const a = await startMesh(t, [r.addr])
    await a.client.collect(r.addr)
    const c = await startMesh(t, [])
    for (const s of ['m1', 'm2', 'm3']) await c.client.park(a.key.did, [r.addr], bytes(s))
    const taken: string[] = []
    let busy = true
    let m2Tries = 0
    const flaky = new MailboxClient(
      {
        libp2p: () => a.libp2p,
        key: () => a.key,
        store: a.store,
        logger: captureLogger().logger,
        relays: () => [r.addr],
        deliver: async (plaintext) => {
          if (text(plaintext) === 'm2') m2Tries++
          if (text(plaintext) === 'm2' && busy) throw new Error('busy')
          taken.push(text(plaintext))
          return { ok: true }
        },
      },
      { pollIntervalMs: 0 },
    )
    assert.equal(await flaky.collect(r.addr), 0) // the drain stops at m2 (m1 taken, counted as failed collection)
    assert.deepEqual(taken, ['m1'])
    assert.equal((await r.relay.mailboxes.usage(a.key.did)).items, 2)
    // Started, the client tries again by itself (after 1 s, then 2 s…) until the node takes it.
    await flaky.start()
    t.after(() => flaky.stop())
    await waitFor(() => m2Tries >= 3, 'm2 refused at start and once more, 1 s later')
    busy = false
    await waitFor(() => taken.length === 3, 'the retried collection takes m2 and m3')
    assert.deepEqual(taken, ['m1', 'm2', 'm3'])
    await waitFor(async () => (await r.relay.mailboxes.usage(a.key.did)).items === 0, 'all acknowledged')
  })

  it('hostile requests: a deposit not by its origin, a malformed or oversized request, fetching another’s mailbox', async (t) => {
    const r = await startRelay(t)
    const a = await startMesh(t, [r.addr])
    await a.client.collect(r.addr)
    const c = await startMesh(t, [])
    await c.client.park(a.key.did, [r.addr], bytes('for a'))
    const raw = async (m: Mesh, request: unknown) => {
      await m.libp2p.dial(r.libp2p.peerId)
      const reply = await exchange(m.libp2p, r.libp2p.peerId, bytes(JSON.stringify(request)), {
        protocol: MESH_MAILBOX_PROTOCOL,
        maxBytes: 2 * 1024 * 1024,
      })
      return JSON.parse(text(reply)) as {
        ok?: { items?: unknown[]; deleted?: number }
        error?: { code: string }
      }
    }
    // C deposits an item whose origin is someone else (validly signed by them): refused.
    const someone = Ed25519KeyPair.generate()
    const notMine = createMailboxItem(someone, a.key.did, bytes('relayed'), {
      expiresAt: Date.now() + 60_000,
    })
    assert.equal((await raw(c, { op: 'deposit', item: notMine })).error?.code, 'MESH_SIGNATURE_MISMATCH')
    assert.equal((await raw(c, { op: 'deposit', item: { nope: 1 } })).error?.code, 'MESH_BAD_REQUEST')
    assert.equal((await raw(c, { op: 'fetch', extra: true })).error?.code, 'MESH_BAD_REQUEST')
    assert.equal((await raw(c, 'not json {')).error?.code, 'MESH_BAD_REQUEST')
    // C fetches: its own (empty) mailbox, never A's.
    assert.deepEqual((await raw(c, { op: 'fetch' })).ok?.items, [])
    // C acks A's item: nothing of A's is deleted.
    const [stored] = await r.relay.mailboxes.list(a.key.did)
    assert.deepEqual((await raw(c, { op: 'ack', ids: [stored?.item.id] })).ok, { deleted: 0 })
    assert.equal((await r.relay.mailboxes.usage(a.key.did)).items, 1)
    // Oversized: the stream is cut, nothing kept.
    await assert.rejects(
      exchange(c.libp2p, r.libp2p.peerId, new Uint8Array(200 * 1024), {
        protocol: MESH_MAILBOX_PROTOCOL,
        maxBytes: 1024,
      }),
    )
    assert.equal((await r.relay.mailboxes.usage(a.key.did)).items, 1)
    await a.client.collect(r.addr)
    assert.deepEqual(a.taken, ['for a'])
  })
})
