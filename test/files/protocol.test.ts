import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { RejectedEntry } from '../../src/connections/index.ts'
import { cidOf, FILES_PROTOCOL } from '../../src/files/index.ts'
import type { MeshLibp2p } from '../../src/p2p/index.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { twoNodesSharing, until } from '../rooms/helpers.ts'
import { postWith, upload } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

type Answer = { ok?: { size: number }; error?: { code: string } }

/** One raw `/mesh/files/1.0.0` request from `host` to `to`: the answer's first frame, parsed. */
async function ask(host: MeshLibp2p, to: TestNode, request: Uint8Array): Promise<Answer> {
  const stream = await host.dialProtocol(multiaddr(to.node.multiaddrs()[0] as string), FILES_PROTOCOL)
  const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
  await lp.write(request)
  const answer = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
  await stream.close().catch(() => {})
  return answer
}
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))

describe('/mesh/files/1.0.0: who is answered (issue 18)', () => {
  it('a shared peer gets a named file; malformed, unnamed, unshared-room and stranger requests are refused with a code', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS })
    const file = await upload(a.api, id, randomBytes(5000), 'x.bin')
    await postWith(a.api, id, 'x', [file])
    const { id: other } = await a.api.post<{ id: string }>('/api/rooms', { name: 'not shared' })
    const hidden = await upload(a.api, other, randomBytes(100), 'hidden.bin')
    await postWith(a.api, other, 'hidden', [hidden])

    const ok = await ask(b.node.libp2p, a, json({ room: id, cid: file.cid, offset: 4000 }))
    assert.deepEqual(ok, { ok: { size: 5000 } })
    const refusals: Array<[unknown, string]> = [
      [{ room: id, cid: file.cid, offset: -1 }, 'MESH_BAD_REQUEST'],
      [{ room: id, cid: file.cid, offset: 0, more: 1 }, 'MESH_BAD_REQUEST'],
      [{ room: id, cid: file.cid, offset: 5001 }, 'MESH_BAD_REQUEST'],
      [{ room: id, cid: 'QmNotRaw', offset: 0 }, 'MESH_BAD_REQUEST'],
      [{ room: id, cid: cidOf(Buffer.from('not named')), offset: 0 }, 'MESH_FORBIDDEN'],
      [{ room: other, cid: hidden.cid, offset: 0 }, 'MESH_FORBIDDEN'],
      [{ room: id, cid: hidden.cid, offset: 0 }, 'MESH_FORBIDDEN'],
    ]
    for (const [request, code] of refusals)
      assert.equal((await ask(b.node.libp2p, a, json(request))).error?.code, code, JSON.stringify(request))
    assert.equal(
      (await ask(b.node.libp2p, a, new TextEncoder().encode('{not json'))).error?.code,
      'MESH_BAD_REQUEST',
    )
    // An oversized request frame: refused unread.
    assert.equal((await ask(b.node.libp2p, a, new Uint8Array(4096))).error?.code, 'MESH_BAD_REQUEST')

    const gamma = await startNode(t, 'gamma')
    const stranger = await ask(gamma.node.libp2p, a, json({ room: id, cid: file.cid, offset: 0 }))
    assert.equal(stranger.error?.code, 'MESH_NOT_CONNECTED')

    // Refusals are in the rejected log, by kind.
    await until(async () => {
      const { entries } = await a.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')
      return entries.some((e) => e.kind === 'files.request' && e.code === 'MESH_FORBIDDEN')
    }, 'refusals recorded')
  })
})
