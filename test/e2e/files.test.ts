import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runMesh, waitFor } from '../../scripts/lib/processes.ts'
import { cidOf } from '../../src/files/index.ts'
import { acceptRoom, type CliMesh, connectionView, e2e, fixedPortStart, freePort } from '../fixtures/e2e.ts'

const MiB = 1024 * 1024

type FileOut = { cid: string; name: string; size: number; mime: string; message: string }
type Msg = { body: string; attachments?: Array<{ cid: string }> }
type Fixed = CliMesh & { httpPort: number; p2pPort: number }

describe('files in rooms across processes, driven by the CLI (issue 18)', () => {
  it('10 MiB posted on alpha is fetched by a beta member, hash checked; a cut transfer resumes; non-member, removed member and a tampered blob refused', async (t) => {
    const e = await e2e(t, 'mesh-files-e2e-')
    const { cli, run } = e
    const mesh = async (name: string): Promise<Fixed> => {
      const m = { name, dir: join(e.root, name), httpPort: await freePort(), p2pPort: await freePort() }
      await e.init(name, m.dir)
      return m
    }
    const alpha = await mesh('alpha')
    const beta = await mesh('beta')
    // alpha serves a transfer at 2 MiB/s at most, so that it can be cut halfway.
    alpha.proc = await e.start([...fixedPortStart(alpha), '--file-serve-rate', String(2 * MiB)])
    beta.proc = await e.start(fixedPortStart(beta))
    alpha.api = await e.signInArchitect(alpha.proc.http, 'alpha')
    beta.api = await e.signInArchitect(beta.proc.http, 'beta')
    beta.did = beta.proc.did as string
    const c = await cli<{ id: string }>(alpha, 'connect', beta.proc.listen[0] as string)
    await waitFor(async () => (await connectionView(beta, c.id))?.status === 'pending', 'request at beta')
    await cli(beta, 'accept', c.id)
    await waitFor(async () => (await connectionView(alpha, c.id))?.status === 'accepted', 'accepted')
    const room = await cli<{ id: string }>(alpha, 'room', 'create', 'files')
    await cli(alpha, 'share', room.id, beta.did)
    await acceptRoom(cli, beta, room.id)
    await waitFor(async () => (await run(beta, 'room', 'join', room.id)).code === 0, 'beta joins')

    // alpha's architect posts 10 MiB with `mesh file put`.
    const bytes = randomBytes(10 * MiB)
    const path = join(e.root, 'big.bin')
    await writeFile(path, bytes)
    const put = await cli<FileOut>(alpha, 'file', 'put', room.id, path, '--message', 'the big one')
    assert.equal(put.cid, cidOf(bytes))
    assert.equal(put.size, 10 * MiB)
    const crossed = async (m: CliMesh, cid: string) =>
      (await cli<{ messages: Msg[] }>(m, 'messages', room.id)).messages.some(
        (x) => x.attachments?.[0]?.cid === cid,
      )
    await waitFor(() => crossed(beta, put.cid), 'the message reaches beta')

    // beta's member asks for it; the transfer is cut halfway (beta crashes), then resumes.
    const out = join(e.root, 'got.bin')
    const first = runMesh(['file', 'get', put.cid, '-o', out, '--data', beta.dir, '--json'], e.env)
    const partial = join(beta.dir, 'blobs', '.partial', put.cid)
    await waitFor(
      async () => ((await stat(partial).catch(() => undefined))?.size ?? 0) >= 3 * MiB,
      'a third arrives',
    )
    await beta.proc.stop('SIGKILL')
    assert.notEqual((await first).code, 0)
    const held = (await stat(partial)).size
    assert.ok(held >= 3 * MiB && held < 10 * MiB, `held ${held}`)
    beta.proc = await e.start(fixedPortStart(beta))
    beta.api = await e.signInArchitect(beta.proc.http, 'beta')
    await waitFor(
      async () => (await run(beta, 'file', 'get', put.cid, '-o', out)).code === 0,
      'the transfer resumes',
      120_000,
    )
    const got = await readFile(out)
    assert.equal(cidOf(got), put.cid)
    assert.ok(got.equals(bytes))
    const fetched = beta.proc.logs.find((l) => l.event === 'files.fetched')
    assert.ok((fetched?.resumedAt as number) >= held, JSON.stringify(fetched))

    // A principal of beta who is not in the room: MESH_FORBIDDEN.
    await cli(undefined, 'key', 'new', 'dan')
    await cli(beta, 'member', 'add', 'dan', '--kind', 'human', '--name', 'dan')
    const outsider = await run(beta, 'file', 'get', put.cid, '-o', join(e.root, 'dan.bin'), '--as', 'dan')
    assert.equal(outsider.out.error?.code, 'MESH_FORBIDDEN', outsider.stderr)

    // A hostile beta: its member's file is served with other bytes; alpha refuses them, stores nothing.
    const small = randomBytes(256 * 1024 + 3)
    const smallPath = join(e.root, 'photo.png')
    await writeFile(smallPath, small)
    const fromBeta = await cli<FileOut>(beta, 'file', 'put', room.id, smallPath)
    assert.equal(fromBeta.mime, 'image/png')
    await waitFor(() => crossed(alpha, fromBeta.cid), 'beta’s file message reaches alpha')
    await writeFile(join(beta.dir, 'blobs', fromBeta.cid), randomBytes(small.length))
    const tampered = await run(alpha, 'file', 'get', fromBeta.cid, '-o', join(e.root, 'tampered.png'))
    assert.equal(tampered.out.error?.code, 'MESH_UNAVAILABLE', tampered.stderr)
    const errors = tampered.out.error?.details.errors as Array<{ code: string }>
    assert.equal(errors[0]?.code, 'MESH_SIGNATURE_MISMATCH')
    await assert.rejects(stat(join(alpha.dir, 'blobs', fromBeta.cid)))
    await assert.rejects(stat(join(alpha.dir, 'blobs', '.partial', fromBeta.cid)))

    // alpha removes beta's architect from the room: beta refuses it the file it holds.
    const betaArchitect = (await e.keystore.load('beta-architect')).did
    await cli(alpha, 'room', 'remove', room.id, betaArchitect)
    await waitFor(
      async () =>
        (await run(beta, 'file', 'get', put.cid, '-o', join(e.root, 'again.bin'))).out.error?.code ===
        'MESH_FORBIDDEN',
      'the removed member is refused',
    )
  })
})
