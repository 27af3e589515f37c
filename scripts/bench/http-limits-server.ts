/**
 * The server process of the HTTP rate-limit benchmark (http-limits.ts): two HTTP apps
 * as the node builds them (createHttpApp, session routes, LevelDB sessions in one
 * store, so that its compactions fall on both alike) on loopback, differing only in
 * `rateLimits` — the first's from argv[2] (JSON), the second's `false`.
 *
 * IPC: sends `{ready: true, urls: [on, off], mesh, alice}` (alice's seed, base64url)
 * once listening; answers `{op: 'cpu'}` with `{cpu}`, this process's CPU time in ms
 * (every thread), so that the bench counts the servers' work and not its own client's;
 * `{op: 'exit'}` (or the channel closing) closes both apps and the store and exits.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { SessionService } from '../../src/auth/index.ts'
import { createHttpApp, type RateLimitsInit, registerSessionRoutes } from '../../src/http/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { MeshStore } from '../../src/store/index.ts'

const send = (message: unknown) => (process.send as (m: unknown) => void)(message)

const mesh = Ed25519KeyPair.generate()
const seed = Buffer.alloc(32)
crypto.getRandomValues(seed)
const alice = new Ed25519KeyPair(seed)
const dir = await mkdtemp(join(tmpdir(), 'mesh-bench-http-'))
const store = new MeshStore({ path: join(dir, 'db') })
await store.open()
const limits = JSON.parse(process.argv[2] ?? 'false') as RateLimitsInit | false
const apps = [limits, false as const].map((rateLimits) => {
  const sessions = new SessionService({
    store,
    meshDid: mesh.did,
    roleOf: async (did) => (did === alice.did ? 'architect' : undefined),
  })
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry(), rateLimits })
  registerSessionRoutes(app, sessions)
  return app
})
const urls: string[] = []
for (const app of apps) {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  urls.push(`http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`)
}

let closing = false
async function exit(): Promise<void> {
  if (closing) return
  closing = true
  for (const app of apps) await app.close()
  await store.close()
  await rm(dir, { recursive: true, force: true })
  process.exit(0)
}
process.on('disconnect', () => void exit())
process.on('message', (message: { op: string }) => {
  if (message.op === 'cpu') {
    const usage = process.cpuUsage()
    send({ cpu: (usage.user + usage.system) / 1000 })
  } else if (message.op === 'exit') void exit()
})
send({ ready: true, urls, mesh: mesh.did, alice: seed.toString('base64url') })
