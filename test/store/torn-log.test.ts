import assert from 'node:assert/strict'
import { mkdir, readdir, rm, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, it, type TestContext } from 'node:test'
import { Level } from 'level'
import { createLogger } from '../../src/log.ts'
import { MARK_FILE, MeshStore, StoreMonitor } from '../../src/store/index.ts'
import { runThenKill } from '../fixtures/crash-child.ts'
import { tempDir } from '../fixtures/principals.ts'
import { alice, manager, meshA } from '../rooms/helpers.ts'

/** Runs the poster child until it has marked, then SIGKILLs it: the acknowledged ids and the room. */
async function postThenKill(path: string, count: number): Promise<{ roomId: string; acked: string[] }> {
  let roomId = ''
  const acked: string[] = []
  await runThenKill(new URL('./torn-poster.ts', import.meta.url), [path, String(count)], (line) => {
    if (line.startsWith('room ')) roomId = line.slice(5)
    else if (line === 'marked') return true
    else acked.push(line)
    return false
  })
  return { roomId, acked }
}

/** The power-loss model: the tail of LevelDB's newest write-ahead log never reached the disk. */
async function tearLog(path: string, bytes: number): Promise<void> {
  const logs = (await readdir(path)).filter((f) => f.endsWith('.log')).sort()
  const last = join(path, logs.at(-1) as string)
  const { size } = await stat(last)
  assert.ok(size > bytes, `log of ${size} bytes`)
  await truncate(last, size - bytes)
}

async function reopen(t: TestContext, path: string, roomId: string) {
  const lines: Array<{ event?: string }> = []
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()))
        done()
      },
    }),
  })
  const store = new MeshStore({ path, logger })
  await store.open()
  t.after(() => store.close())
  const rooms = await manager(t, meshA, { store })
  const room = await rooms.load(roomId)
  return { store, room, lines, health: new StoreMonitor({ store }).health }
}

describe('a torn write-ahead log', () => {
  it('is reported at open (store.torn_log, health degraded) when acknowledged posts are lost', async (t) => {
    const path = join(await tempDir(t), 'db')
    const { roomId, acked } = await postThenKill(path, 30)
    await tearLog(path, 4096)
    const { store, room, lines, health } = await reopen(t, path, roomId)
    const missing = acked.filter((id) => room.message(id) === undefined)
    assert.ok(missing.length > 0, 'the tear took acknowledged posts (the model bites)')
    // Never silent: the loss is reported.
    assert.ok(
      store.tornLog !== undefined,
      `${missing.length} of ${acked.length} acknowledged posts lost silently`,
    )
    assert.ok(lines.some((l) => l.event === 'store.torn_log'))
    assert.equal(health.status, 'degraded')
  })

  it('is not reported when marks reached the store but not the mark file (no false alarm)', async (t) => {
    const path = join(await tempDir(t), 'db')
    const store = new MeshStore({ path })
    await store.open()
    await store.mark()
    // The file cannot be replaced (a directory stands where its temp file goes): two marks
    // reach the store only.
    await mkdir(join(path, `${MARK_FILE}.tmp`))
    await assert.rejects(store.mark())
    await assert.rejects(store.mark())
    await store.close()
    await rm(join(path, `${MARK_FILE}.tmp`), { recursive: true })
    const again = new MeshStore({ path })
    await again.open()
    t.after(() => again.close())
    assert.equal(again.tornLog, undefined)
  })

  it('keeps every acknowledged post through a SIGKILL and reports nothing when the log is whole', async (t) => {
    const path = join(await tempDir(t), 'db')
    const { roomId, acked } = await postThenKill(path, 30)
    const { store, room, lines, health } = await reopen(t, path, roomId)
    assert.deepEqual(
      acked.filter((id) => room.message(id) === undefined),
      [],
    )
    assert.equal(store.tornLog, undefined)
    assert.ok(!lines.some((l) => l.event === 'store.torn_log'))
    assert.equal(health.status, 'ok')
  })
})

describe('acknowledged writes', () => {
  it('reach LevelDB with sync: true (fsynced before they resolve), unless a write opts out or is a put to a cache (dht, registry, sessions)', async (t) => {
    const proto = Level.prototype as unknown as Record<
      '_put' | '_del' | '_batch',
      (...args: unknown[]) => unknown
    >
    const seen: Array<{ op: string; sync: unknown }> = []
    for (const op of ['_put', '_del', '_batch'] as const) {
      const original = proto[op]
      proto[op] = function (this: unknown, ...args: unknown[]) {
        seen.push({ op, sync: (args.at(-1) as { sync?: unknown }).sync })
        return original.apply(this, args)
      }
      t.after(() => {
        proto[op] = original
      })
    }
    const store = new MeshStore({ path: join(await tempDir(t), 'db') })
    await store.open()
    t.after(() => store.close())
    const rooms = await manager(t, meshA, { store })
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    await rooms.post(id, alice.did, 'stored means on disk')
    await store.sublevel('members').put('m', { a: 1 })
    await store.sublevel('members').del('m')
    await store.batch([{ type: 'put', sublevel: store.sublevel('audit'), key: 'k', value: 1 }])
    // A logout or a revocation must not come back after a power loss.
    await store.sublevel('sessions').del('s')
    assert.ok(seen.length >= 5)
    assert.deepEqual(
      seen.filter((w) => w.sync !== true),
      [],
    )
    await store.sublevel('members').put('cache', 1, { sync: false } as object)
    assert.equal(seen.at(-1)?.sync, false)
    // The DHT's records are a cache of the network, sessions mean a new sign-in at worst:
    // a flood of either must not cost an fsync each.
    await store.sublevel('dht').put('/dht/record/x', 'y')
    assert.equal(seen.at(-1)?.sync, false)
    await store.sublevel('sessions').put('s', { did: 'x' })
    assert.equal(seen.at(-1)?.sync, false)
  })
})
