import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import type { LedgerView } from '../../src/api/index.ts'
import { createHttpApp } from '../../src/http/index.ts'
import { ledgerRoutes } from '../../src/http/routes/ledger.ts'
import { signReceipt } from '../../src/ledger/index.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob } from '../fixtures/principals.ts'
import { auth, stubSession } from '../fixtures/stub-session.ts'

// coordination fees (SPEC §10): GET /api/ledger.

const receipt = signReceipt(bob, {
  relay: alice.did,
  beneficiary: bob.did,
  bytes: 10,
  messages: 1,
  from: 1,
  to: 2,
  seq: 1,
})
const view: LedgerView = {
  did: alice.did,
  relaying: true,
  freeBytes: 8 * 1024 * 1024,
  signing: true,
  beneficiaries: [
    {
      did: bob.did,
      peerId: bob.peerId().toString(),
      measuredBytes: 10,
      measuredMessages: 1,
      circuits: 1,
      receipts: 1,
      receiptedBytes: 10,
      receiptedMessages: 1,
      lastSeq: 1,
      unreceiptedBytes: 0,
      refused: 0,
      verified: true,
      cutOff: null,
    },
  ],
  relays: [],
}

async function server(t: TestContext) {
  const asked: Array<{ receipts?: boolean }> = []
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  app.decorate('requireSession', stubSession)
  await app.register(ledgerRoutes, {
    ledger: async (options) => {
      asked.push(options)
      return options.receipts === true ? { ...view, receipts: [receipt] } : view
    },
  })
  t.after(() => app.close())
  const get = async (url: string, headers: Record<string, string> = auth) => {
    const res = await app.inject({ method: 'GET', url, headers })
    return { status: res.statusCode, body: res.json() as LedgerView & { error?: { code: string } } }
  }
  return { get, asked }
}

describe('GET /api/ledger', () => {
  it('needs a session', async (t) => {
    const { get } = await server(t)
    const res = await get('/api/ledger', {})
    assert.equal(res.status, 401)
    assert.equal(res.body.error?.code, 'MESH_UNAUTHENTICATED')
  })

  it('is the ledger; with receipts=true, every receipt too', async (t) => {
    const { get, asked } = await server(t)
    const plain = await get('/api/ledger')
    assert.equal(plain.status, 200)
    assert.deepEqual(plain.body, view)
    const full = await get('/api/ledger?receipts=true')
    assert.deepEqual(full.body.receipts, [receipt])
    assert.deepEqual(asked, [{ receipts: false }, { receipts: true }])
  })

  it('refuses a query it does not know with MESH_BAD_REQUEST', async (t) => {
    const { get } = await server(t)
    for (const url of ['/api/ledger?receipts=maybe', `/api/ledger?receipts=${'x'.repeat(5000)}`]) {
      const res = await get(url)
      assert.equal(res.status, 400, url.slice(0, 40))
      assert.equal(res.body.error?.code, 'MESH_BAD_REQUEST')
    }
  })
})
