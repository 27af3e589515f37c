import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  checkConsistencyProof,
  checkInclusionProof,
  parseTreeHead,
  type SignedTreeHead,
} from '../../src/audit/index.ts'
import { e2e, freePort } from '../fixtures/e2e.ts'

describe('the audit Merkle log across processes', () => {
  it('mesh audit head prints the signed head; the HTTP proofs verify against it, also after a restart', async (t) => {
    const { root, start, init, cli, signInArchitect } = await e2e(t, 'mesh-audit-merkle-e2e-')
    const dir = join(root, 'alpha')
    await init('alpha', dir)
    const port = await freePort()
    const http = `127.0.0.1:${port}`
    const startNode = () =>
      start([
        'start',
        ...['--data', dir, '--http', http],
        ...['--listen', '/ip4/127.0.0.1/tcp/0', '--discovery-interval', '60000', '--probe-interval', '0'],
      ])
    let proc = await startNode()
    const m = { dir }
    for (const mode of ['allowlist', 'open', 'closed']) await cli(m, 'policy', '--mode', mode)
    const head = parseTreeHead(await cli<SignedTreeHead>(m, 'audit', 'head'), [proc.did as string])
    assert.equal(head.mesh, proc.did)
    assert.ok(head.size >= 3, `size ${head.size}`)

    let api = await signInArchitect(`http://${http}`, 'alpha')
    for (let seq = 1; seq <= head.size; seq++) {
      checkInclusionProof(
        await api.call('auditInclusionProof', { query: { seq: String(seq), size: String(head.size) } }),
        head,
      )
    }

    await proc.stop('SIGTERM')
    proc = await startNode()
    await cli(m, 'policy', '--mode', 'open')
    const later = parseTreeHead(await cli<SignedTreeHead>(m, 'audit', 'head'), [proc.did as string])
    assert.ok(later.size > head.size)
    api = await signInArchitect(`http://${http}`, 'alpha')
    const proof = await api.call('auditConsistencyProof', {
      query: { from: String(head.size), to: String(later.size) },
    })
    checkConsistencyProof(proof, head, later)
  })
})
