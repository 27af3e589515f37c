import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { TrustView } from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { startNode } from '../connections/nodes.ts'
import { rootOf } from './chain-acts.ts'

// Issue 14: `mesh trust did:key:xyz --tier 2` stored a tier for a did that names no key, for
// ever. The node refuses it itself (MESH_BAD_REQUEST), whatever client signed the promotion.
describe('PUT /api/trust/:did of a did:key that names no key', () => {
  for (const did of [
    'did:key:xyz',
    'did:key:z6Mk',
    'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do',
  ]) {
    it(`refuses ${did}: MESH_BAD_REQUEST, nothing stored`, async (t) => {
      const a = await startNode(t, 'alpha')
      const ucan = await invocationToken(
        a.architect,
        a.node.did,
        { can: 'trust/promote', with: a.node.did, nb: { subject: did, tier: 2, reason: 'typo' } },
        [await rootOf(a)],
      )
      const path = `/api/trust/${encodeURIComponent(did)}`
      await assert.rejects(a.api.put<TrustView>(path, { tier: 2, reason: 'typo', ucan }), {
        code: 'MESH_BAD_REQUEST',
      })
      const all = await a.api.get<{ principals: TrustView[] }>('/api/trust')
      assert.equal(
        all.principals.find((p) => p.did === did),
        undefined,
      )
    })
  }
})
