import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'
import { AuditLog, type DefectionRecord, HeadBook, type SignedTreeHead } from '../../src/audit/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { MeshStore } from '../../src/store/index.ts'
import { bob, tempDir, tempStore } from '../fixtures/principals.ts'

const APPENDER = new URL('../fixtures/audit-appender.ts', import.meta.url).pathname

/** A small seeded PRNG (mulberry32): the same run every time. */
function seeded(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Runs the appender on `path` until it has written `rows` more rows, then SIGKILLs it mid-append. */
async function killMidAppend(path: string, key: Ed25519KeyPair, mesh: string, known: string[], rows: number) {
  const seed = Buffer.from(key.seed).toString('hex')
  const child = spawn(process.execPath, [APPENDER, path, seed, mesh, known.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout })
  let seen = 0
  for await (const _ of lines) {
    if (++seen >= rows) break
  }
  child.kill('SIGKILL')
  await once(child, 'exit')
}

describe('no false positive (seeded)', () => {
  it('an honest mesh through restarts, SIGKILL mid-append, key rotation and 10,000 appends is never flagged', async (t) => {
    const random = seeded(17)
    const dir = await tempDir(t)
    const path = join(dir, 'alpha-audit')
    let key = Ed25519KeyPair.generate()
    const mesh = key.did
    const keys = [key.did]
    let store = new MeshStore({ path })
    await store.open()
    let audit = new AuditLog({ store, key, mesh, knownKeys: () => keys })
    await audit.start()

    // The watcher: a peer's head book, asking the log itself for every consistency proof.
    const found: DefectionRecord[] = []
    const watcher = new HeadBook({
      audit: await watcherLog(t),
      logger: silentLogger(),
      keysOf: async () => ({ keys: [...keys], rotation: [] }),
      ask: async (_mesh, from) => audit.consistencyProof(from),
      onDefection: (record) => found.push(record),
    })
    const heads: SignedTreeHead[] = []
    const observe = async () => {
      const head = audit.treeHead()
      heads.push(head)
      const result = await watcher.take(head)
      assert.notEqual(result, 'defection')
    }

    let appended = 0
    let restarts = 0
    let kills = 0
    let rotations = 0
    const reopen = async () => {
      audit = new AuditLog({ store, key, mesh, knownKeys: () => keys })
      await audit.start()
    }
    while (appended < 10_000) {
      const burst = 1 + Math.floor(random() * 400)
      for (let i = 0; i < burst && appended < 10_000; i++, appended++) {
        await audit.append({ action: 'test.honest', details: { appended } })
      }
      await observe()
      const event = random()
      if (event < 0.25) {
        await audit.stop()
        await reopen()
        restarts++
      } else if (event < 0.4) {
        await audit.stop()
        await store.close()
        await killMidAppend(path, key, mesh, keys, 5 + Math.floor(random() * 50))
        store = new MeshStore({ path })
        await store.open()
        await reopen()
        appended = audit.treeHead().size
        kills++
      } else if (event < 0.5) {
        const next = Ed25519KeyPair.generate()
        await audit.rotateKey(next)
        keys.push(next.did)
        key = next
        rotations++
      }
      await observe()
    }
    t.diagnostic(
      `${audit.treeHead().size} rows, ${restarts} restarts, ${kills} kills, ${rotations} rotations`,
    )
    assert.ok(restarts > 0 && kills > 0 && rotations > 0)
    assert.deepEqual(found, [])
    // Every head it signed, in any order, is joined by a proof from the final log.
    const last = audit.treeHead()
    for (const head of heads.filter((_, i) => i % 7 === 0)) {
      const proof = await audit.consistencyProof(head.size)
      assert.equal(proof.fromRoot, head.root)
    }
    assert.equal((await watcher.held(mesh))?.size, last.size)
    assert.equal((await audit.verify()).ok, true)
    await audit.stop()
    await store.close()
  })
})

/** The watcher's own log (where it keeps what it holds), under another key. */
async function watcherLog(t: Parameters<typeof tempStore>[0]): Promise<AuditLog> {
  const log = new AuditLog({ store: await tempStore(t), key: bob })
  await log.start()
  t.after(() => log.stop())
  return log
}
