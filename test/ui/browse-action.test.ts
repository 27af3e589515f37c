import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ConnectionView } from '../../src/api/index.ts'

// The console's Browse tab (browser code, run here on Node): what it offers for a mesh.
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const { browseAction } = (await import(ui('browse.ts'))) as typeof import('../../src/ui/src/lib/browse.ts')

const beta = 'did:key:z6MkeuaYxXaaq9FJToFMc48CBWwbcHHub8XW3p4jvLFNvSHw'
const view = (status: string, direction: 'inbound' | 'outbound' = 'outbound') =>
  ({ peerDid: beta, peerKeyDid: beta, status, direction }) as unknown as ConnectionView

describe('the Browse tab matches the connection state (issue 14)', () => {
  it('offers a request only where no connection stands', () => {
    assert.equal(browseAction([], beta).kind, 'request')
    assert.equal(browseAction([view('declined')], beta).kind, 'request')
    assert.equal(browseAction([view('disconnected')], beta).kind, 'request')
    assert.deepEqual(browseAction([view('pending')], beta), { kind: 'asked', label: 'Request sent' })
    assert.equal(browseAction([view('pending', 'inbound')], beta).kind, 'answer')
    for (const status of ['accepted', 'degraded'])
      assert.deepEqual(browseAction([view('disconnected'), view(status)], beta), {
        kind: 'connected',
        label: 'Connected',
      })
    assert.equal(browseAction([view('paused')], beta).kind, 'connected')
    assert.equal(browseAction([view('accepted')], 'did:key:z6Mkother').kind, 'request')
  })
})
