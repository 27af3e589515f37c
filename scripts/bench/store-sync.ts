// The cost of fsynced writes (MeshStore's default) against unsynced ones: room posts
// one at a time, room posts 8 at once (group commit), and single puts (a session).
// Usage: node scripts/bench/store-sync.ts [posts=300]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { RoomManager } from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'

const n = Number(process.argv[2] ?? 300)
const mesh = Ed25519KeyPair.generate()
const author = Ed25519KeyPair.generate()

async function run(sync: boolean) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-sync-'))
  const store = new MeshStore({ path: join(dir, 'db'), sync })
  await store.open()
  const rooms = new RoomManager({
    store,
    key: () => mesh,
    meshName: 'bench',
    localPrincipal: async (did) => (did === author.did ? { localId: 'author', tier: 1 } : undefined),
  })
  await rooms.start()
  const { id } = await rooms.create({ name: 'bench', creator: author.did })
  let t = performance.now()
  for (let i = 0; i < n; i++) await rooms.post(id, author.did, `post ${i}`)
  const serial = n / ((performance.now() - t) / 1000)
  t = performance.now()
  for (let i = 0; i < n; i += 8)
    await Promise.all(Array.from({ length: 8 }, (_, j) => rooms.post(id, author.did, `burst ${i + j}`)))
  const burst = n / ((performance.now() - t) / 1000)
  t = performance.now()
  const sessions = store.sublevel('sessions')
  for (let i = 0; i < n; i++) await sessions.put(`s${i}`, { did: author.did, expiresAt: i })
  const puts = n / ((performance.now() - t) / 1000)
  await rooms.stop()
  await store.close()
  await rm(dir, { recursive: true, force: true })
  return { serial: Math.round(serial), burst: Math.round(burst), puts: Math.round(puts) }
}

const off = await run(false)
const on = await run(true)
process.stdout.write(
  `${JSON.stringify({ posts: n, unsynced: off, synced: on, ratio: { serial: +(on.serial / off.serial).toFixed(2), burst: +(on.burst / off.burst).toFixed(2), puts: +(on.puts / off.puts).toFixed(2) } })}\n`,
)
