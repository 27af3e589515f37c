import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { classifyDeliveryError, DeliveryError } from '../../src/connections/connect-protocol.ts'
import { Outbox, type OutboxHandler, type OutboxItem } from '../../src/connections/outbox.ts'
import { tempStore } from '../fixtures/principals.ts'
import { waitFor } from '../p2p/nodes.ts'

const input = (peer: string, n: number) => ({
  peer,
  connectionId: `conn-${n}`.padEnd(16, '0'),
  type: 'connect.request' as const,
  body: { n },
  proofs: [],
  envelopeId: `env-${n}`,
})

describe('Outbox', () => {
  it('delivers in order per peer, retries transient failures with capped jittered backoff, drops permanent ones', async (t) => {
    const store = await tempStore(t)
    const attempts: Array<[string, number]> = []
    let failuresLeft = 2
    const failed: OutboxItem[] = []
    let outbox: Outbox | undefined
    const handler: OutboxHandler = {
      async deliver(item) {
        attempts.push([item.peer, item.body.n as number])
        if (item.body.n === 1 && failuresLeft-- > 0)
          throw new DeliveryError('connect-refused', 'MESH_UNAVAILABLE', 'refused')
        if (item.body.n === 2) throw new DeliveryError('remote-refused', 'MESH_FORBIDDEN', 'no')
        await store.batch((outbox as Outbox).removeOperations(item))
      },
      isPermanent: (err) => err.kind === 'remote-refused',
      async fail(item) {
        failed.push(item)
        await store.batch((outbox as Outbox).removeOperations(item))
      },
    }
    outbox = new Outbox({ store, handler, baseDelayMs: 20, maxDelayMs: 40 })
    await outbox.start()
    t.after(() => outbox.stop())
    const ops = [1, 2, 3].flatMap((n) => outbox.enqueueOperations(input('p1', n)).operations)
    await store.batch(ops)
    outbox.kick('p1')
    await waitFor(async () => (await outbox.pending()).length === 0, 'queue drained')
    assert.deepEqual(
      attempts.map(([, n]) => n),
      [1, 1, 1, 2, 3],
    )
    assert.deepEqual(
      failed.map((i) => i.body.n),
      [2],
    )
    for (let attempt = 1; attempt < 10; attempt++) {
      const delay: number = outbox.backoff(attempt)
      assert.ok(delay >= 10 && delay <= 40, String(delay))
    }
  })

  it('keeps its items across a restart and retries them at once', async (t) => {
    const store = await tempStore(t)
    const delivered: number[] = []
    let up = false
    let outbox: Outbox
    const handler: OutboxHandler = {
      async deliver(item) {
        if (!up) throw new DeliveryError('timeout', 'MESH_UNAVAILABLE', 'timeout')
        delivered.push(item.body.n as number)
        await store.batch(outbox.removeOperations(item))
      },
      isPermanent: () => false,
      async fail() {},
    }
    outbox = new Outbox({ store, handler, baseDelayMs: 60_000, maxDelayMs: 60_000 })
    await outbox.start()
    await store.batch(outbox.enqueueOperations(input('p1', 7)).operations)
    outbox.kick('p1')
    await waitFor(async () => (await outbox.pending())[0]?.attempts === 1, 'first attempt failed')
    await outbox.stop()
    up = true
    outbox = new Outbox({ store, handler, baseDelayMs: 60_000, maxDelayMs: 60_000 })
    await outbox.start()
    t.after(() => outbox.stop())
    await waitFor(() => delivered.length === 1, 'delivered after restart despite a 60 s backoff')
    assert.deepEqual(delivered, [7])
  })

  // paused links (issue 13)
  it('holds a peer’s queue while it is held (a paused connection), untouched; a kick after release delivers each once, in order', async (t) => {
    const store = await tempStore(t)
    const delivered: Array<[string, number]> = []
    const held = new Set(['p1'])
    const asked: string[] = []
    let outbox: Outbox
    const handler: OutboxHandler = {
      async deliver(item) {
        delivered.push([item.peer, item.body.n as number])
        await store.batch(outbox.removeOperations(item))
      },
      isPermanent: () => false,
      async fail() {},
    }
    outbox = new Outbox({
      store,
      handler,
      baseDelayMs: 10,
      held: async (peer) => {
        asked.push(peer)
        return held.has(peer)
      },
    })
    await outbox.start()
    t.after(() => outbox.stop())
    await store.batch([1, 2, 3].flatMap((n) => outbox.enqueueOperations(input('p1', n)).operations))
    await store.batch(outbox.enqueueOperations(input('p2', 9)).operations)
    for (let i = 0; i < 3; i++) outbox.kick('p1', { now: true })
    outbox.kick('p2')
    await waitFor(
      async () => delivered.length === 1 && asked.filter((p) => p === 'p1').length >= 1,
      'p2 delivered',
    )
    await waitFor(async () => asked.filter((p) => p === 'p1').length >= 2, 'p1 asked again')
    assert.deepEqual(delivered, [['p2', 9]])
    const waiting = await outbox.pending('p1')
    assert.deepEqual(
      waiting.map((i) => [i.body.n, i.attempts]),
      [
        [1, 0],
        [2, 0],
        [3, 0],
      ],
    )
    held.delete('p1')
    outbox.kick('p1', { now: true })
    await waitFor(async () => (await outbox.pending()).length === 0, 'released')
    assert.deepEqual(delivered, [
      ['p2', 9],
      ['p1', 1],
      ['p1', 2],
      ['p1', 3],
    ])
  })

  it('classifies transport errors', () => {
    const named = (name: string, message = name) => Object.assign(new Error(message), { name })
    assert.equal(classifyDeliveryError(named('UnsupportedProtocolError')).kind, 'protocol-version')
    assert.equal(classifyDeliveryError(named('UnsupportedProtocolError')).code, 'MESH_PROTOCOL_VERSION')
    assert.equal(classifyDeliveryError(named('TimeoutError')).kind, 'timeout')
    assert.equal(classifyDeliveryError(named('NoValidAddressesError')).kind, 'no-address')
    assert.equal(
      classifyDeliveryError(named('Error', 'connect ECONNREFUSED 127.0.0.1:1')).kind,
      'connect-refused',
    )
    assert.equal(
      classifyDeliveryError(named('StreamResetError', 'The stream has been reset')).kind,
      'network',
    )
  })
})
