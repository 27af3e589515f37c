import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { roomResourceOf } from '../../src/auth/authority/index.ts'
import { cidOf } from '../../src/files/index.ts'
import { enrolledAgent } from '../auth/chain-acts.ts'
import { mallory } from '../fixtures/principals.ts'
import { twoNodesSharing, until } from '../rooms/helpers.ts'
import { bytesOf, download, postWith, upload } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
const MiB = 1024 * 1024

type Msg = { body: string; attachments?: Array<{ cid: string }> }
const messagesAt = async (api: { get<T>(p: string): Promise<T> }, id: string) =>
  (await api.get<{ messages: Msg[] }>(`/api/rooms/${id}/messages?limit=200`)).messages

describe('files in rooms across two meshes (issue 18)', () => {
  it('a 10 MiB file posted on alpha is fetched by a beta member, hash checked; Range; non-member and removed member refused', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS, files: { maxFileBytes: 11 * MiB } })
    const bytes = randomBytes(10 * MiB)
    const file = await upload(a.api, id, bytes, 'big.bin')
    assert.deepEqual(file, {
      cid: cidOf(bytes),
      name: 'big.bin',
      size: 10 * MiB,
      mime: 'application/octet-stream',
    })
    // Over the cap: refused, nothing kept.
    await assert.rejects(upload(a.api, id, randomBytes(11 * MiB + 1), 'huge.bin'), { code: 'MESH_TOO_LARGE' })
    assert.deepEqual(await readdir(join(a.dataDir, 'blobs', '.tmp')), [])
    // Naming a file not uploaded here is refused.
    const stray = { ...file, cid: cidOf(Buffer.from('not here')) }
    await assert.rejects(postWith(a.api, id, 'stray', [stray]), { code: 'MESH_BAD_REQUEST' })
    await postWith(a.api, id, 'the big one', [file])
    await until(
      async () => (await messagesAt(b.api, id)).some((m) => m.attachments?.[0]?.cid === file.cid),
      'the message crosses',
    )

    const got = await bytesOf(b.api, file.cid)
    assert.ok(Buffer.isBuffer(got), JSON.stringify(got))
    assert.equal(cidOf(got), file.cid)
    assert.equal(b.node.files.stats.fetched, 1)
    // Served once hash checked; indexed in the cache once on disk (files18c).
    await b.node.files.store.settled()
    assert.deepEqual(b.node.files.store.cached(), [{ cid: file.cid, size: 10 * MiB }])

    // Range: 206 with Content-Range, a suffix, 416 past the end.
    const part = await download(b.api, file.cid, 'bytes=100-199')
    assert.equal(part.status, 206)
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${10 * MiB}`)
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(100, 200))
    const tail = await download(a.api, file.cid, 'bytes=-10')
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), bytes.subarray(bytes.length - 10))
    const past = await download(a.api, file.cid, `bytes=${20 * MiB}-`)
    assert.equal(past.status, 416)
    assert.equal(past.headers.get('content-range'), `bytes */${10 * MiB}`)

    // Unknown: MESH_NOT_FOUND; a principal of beta not in the room: MESH_FORBIDDEN.
    assert.equal(
      ((await bytesOf(b.api, cidOf(Buffer.from('nobody')))) as { code: string }).code,
      'MESH_NOT_FOUND',
    )
    const outsider = await enrolledAgent(b, mallory, 'outsider')
    assert.equal(((await bytesOf(outsider, file.cid)) as { code: string }).code, 'MESH_FORBIDDEN')

    // Hostile uploads and posts: refused with a code, nothing kept.
    await assert.rejects(upload(outsider, id, Buffer.from('x'), 'x.txt'), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(upload(a.api, 'no-such-room', Buffer.from('x'), 'x.txt'), { code: 'MESH_NOT_FOUND' })
    await assert.rejects(upload(a.api, id, Buffer.from('x'), '../x.txt'), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(upload(a.api, id, Buffer.from('x'), 'x.txt', 'text/html; charset=x'), {
      code: 'MESH_BAD_REQUEST',
    })
    const asJson = await fetch(`${a.api.baseUrl}/api/rooms/${id}/files?name=x.json`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.api.token}`, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(asJson.status, 400)
    const anonymous = await fetch(`${a.api.baseUrl}/api/files/${file.cid}`)
    assert.equal(anonymous.status, 401)
    const eleven = Array.from({ length: 11 }, () => file)
    await assert.rejects(postWith(a.api, id, 'too many', eleven), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(postWith(a.api, id, 'wrong size', [{ ...file, size: 1 }]), {
      code: 'MESH_BAD_REQUEST',
    })
    assert.deepEqual(await readdir(join(a.dataDir, 'blobs', '.tmp')), [])

    // The home mesh removes beta's member: beta no longer serves it the file it holds.
    await a.api.request('DELETE', `/api/rooms/${id}/members/${b.architect.did}`, {
      ucan: await a.act('room/remove', b.architect.did, undefined, roomResourceOf(a.node.did, id)),
    })
    await until(
      async () => ((await bytesOf(b.api, file.cid)) as { code?: string }).code === 'MESH_FORBIDDEN',
      'the removed member is refused',
    )
  })

  it('a tampered blob from a hostile peer is refused and nothing stored; after unshare the peer refuses', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS })
    const bytes = randomBytes(3 * MiB + 17)
    const file = await upload(b.api, id, bytes, 'photo.png', 'image/png')
    await postWith(b.api, id, 'from beta', [file])
    await until(
      async () => (await messagesAt(a.api, id)).some((m) => m.attachments?.[0]?.cid === file.cid),
      'the message crosses',
    )
    // Beta turns hostile: it serves other bytes under the CID.
    const blob = join(b.dataDir, 'blobs', file.cid)
    await writeFile(blob, randomBytes(bytes.length))
    const refused = (await bytesOf(a.api, file.cid)) as {
      code: string
      details: { errors: Array<{ code: string }> }
    }
    assert.equal(refused.code, 'MESH_UNAVAILABLE')
    assert.equal(refused.details.errors[0]?.code, 'MESH_SIGNATURE_MISMATCH')
    assert.ok(a.node.files.stats.hashRefused >= 1)
    assert.equal(await a.node.files.store.size(file.cid), undefined)
    assert.equal(await a.node.files.store.partialSize(file.cid), 0)

    // Honest again: the file comes, with its type and inline.
    await writeFile(blob, bytes)
    const ok = await download(a.api, file.cid)
    assert.equal(ok.status, 200)
    assert.equal(ok.headers.get('content-type'), 'image/png')
    assert.match(ok.headers.get('content-disposition') ?? '', /^inline; filename\*=UTF-8''photo\.png$/)
    assert.equal(cidOf(Buffer.from(await ok.arrayBuffer())), file.cid)

    // After unshare, alpha's files are refused to beta over /mesh/files.
    const second = await upload(a.api, id, randomBytes(1000), 'later.txt', 'text/plain')
    await postWith(a.api, id, 'after', [second])
    await until(
      async () => (await messagesAt(b.api, id)).some((m) => m.attachments?.[0]?.cid === second.cid),
      'the second message crosses',
    )
    await a.api.post(`/api/rooms/${id}/unshare`, {
      mesh: b.node.did,
      ucan: await a.act('room/unshare', b.node.did, undefined, roomResourceOf(a.node.did, id)),
    })
    const after = (await bytesOf(b.api, second.cid)) as {
      code: string
      details: { errors: Array<{ code: string }> }
    }
    assert.equal(after.code, 'MESH_UNAVAILABLE')
    assert.ok(
      after.details.errors.some((e) => e.code === 'MESH_FORBIDDEN' || e.code === 'MESH_NOT_CONNECTED'),
      JSON.stringify(after),
    )
    assert.equal(await b.node.files.store.size(second.cid), undefined)
  })

  it('a transfer cut halfway resumes from the bytes held', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS, files: { serveBytesPerSecond: 4 * MiB } })
    const bytes = randomBytes(10 * MiB)
    const file = await upload(a.api, id, bytes, 'slow.bin')
    await postWith(a.api, id, 'slow', [file])
    await until(
      async () => (await messagesAt(b.api, id)).some((m) => m.attachments?.[0]?.cid === file.cid),
      'the message crosses',
    )
    const first = bytesOf(b.api, file.cid)
    const partial = b.node.files.store.partialPath(file.cid)
    await until(
      async () => ((await stat(partial).catch(() => undefined))?.size ?? 0) >= 3 * MiB,
      'a third arrives',
    )
    // The cut: alpha closes the connection mid-transfer.
    await a.node.libp2p.hangUp(b.node.libp2p.peerId)
    const cut = (await first) as { code: string }
    assert.equal(cut.code, 'MESH_UNAVAILABLE')
    const held = await b.node.files.store.partialSize(file.cid)
    assert.ok(held >= 3 * MiB && held < 10 * MiB, `held ${held}`)

    const again = await until(async () => {
      const r = await bytesOf(b.api, file.cid)
      return Buffer.isBuffer(r) ? r : undefined
    }, 'the transfer resumes')
    assert.equal(cidOf(again), file.cid)
    assert.equal(b.node.files.stats.resumed, 1)
    const line = b.lines.find((l) => l.event === 'files.fetched')
    assert.ok((line?.resumedAt as number) >= held, JSON.stringify(line))
  })
})
