/**
 * Store and forward (issue 16, SPEC §10): mailbox deliveries per second against a direct
 * exchange, in the same run, between real libp2p hosts on loopback with real LevelDB stores.
 *
 * - mailbox.deliveries_per_s: C leaves N sealed, signed 1 KiB messages for A at R
 *   (`/mesh/mailbox/1.0.0` deposits, each kept in R's LevelDB), then A collects them (fetch,
 *   check, open, replay guard written, ack: R deletes) — N over the whole time, deposits and
 *   collection. Baseline: the same N messages sent directly C → A, one exchange (stream) each,
 *   as the outbox does. No aim in the issue; ours: ≥ 0.1× direct (a mailbox message is two
 *   hops, three synced LevelDB writes and a sealed box more than a direct one).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import { exchange } from '../../src/connections/connect-protocol.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { MailboxClient, MailboxRelay } from '../../src/mailbox/index.ts'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/p2p/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { emit, note, type ResultName } from './report.ts'

export const MAILBOX_NAMES: ResultName[] = [
  { name: 'mailbox.deliveries_per_s', unit: 'msg/s', better: 'higher' },
]

const N = 300
const DIRECT = '/mesh-bench/direct/1.0.0'
const message = (i: number) => new TextEncoder().encode(`${String(i).padStart(8, '0')}${'m'.repeat(1016)}`)

interface Side {
  key: Ed25519KeyPair
  libp2p: MeshLibp2p
  store: MeshStore
  dir: string
}

async function side(): Promise<Side> {
  const key = Ed25519KeyPair.generate()
  const dir = await mkdtemp(join(tmpdir(), 'mesh-bench-mailbox-'))
  const store = new MeshStore({ path: dir })
  await store.open()
  const libp2p = await createMeshLibp2p({ key })
  return { key, libp2p, store, dir }
}

export async function benchMailbox(): Promise<void> {
  const sides: Side[] = []
  const stops: Array<() => Promise<unknown>> = []
  try {
    const r = await side()
    const a = await side()
    const c = await side()
    sides.push(r, a, c)
    const relayAddress = `${r.libp2p.getMultiaddrs()[0]}`
    const relay = new MailboxRelay(
      { libp2p: () => r.libp2p, store: r.store, logger: silentLogger() },
      { maxItems: N * 2, requestsPerMinute: 1_000_000 },
    )
    await relay.start()
    stops.push(() => relay.stop())
    let taken = 0
    const client = (s: Side) =>
      new MailboxClient(
        {
          libp2p: () => s.libp2p,
          key: () => s.key,
          store: s.store,
          logger: silentLogger(),
          relays: () => [relayAddress],
          deliver: async () => {
            taken++
            return { ok: true }
          },
        },
        { pollIntervalMs: 0 },
      )
    const atA = client(a)
    const atC = client(c)
    await atA.collect(relayAddress) // A asks R for a mailbox

    // Direct: C → A, one exchange each, A answers a byte.
    await a.libp2p.handle(DIRECT, async (stream) => {
      const lp = lpStream(stream)
      await lp.read()
      await lp.write(new Uint8Array([1]))
      await stream.close()
    })
    await c.libp2p.dial(a.libp2p.getMultiaddrs())
    const t0 = performance.now()
    for (let i = 0; i < N; i++) await exchange(c.libp2p, a.libp2p.peerId, message(i), { protocol: DIRECT })
    const directPerS = N / ((performance.now() - t0) / 1000)

    // Mailbox: C → R (deposits), then A ← R (collection), whole time.
    const t1 = performance.now()
    for (let i = 0; i < N; i++) await atC.park(a.key.did, [relayAddress], message(i))
    const parkedMs = performance.now() - t1
    await atA.collect(relayAddress)
    const totalMs = performance.now() - t1
    if (taken !== N) throw new Error(`A took ${taken} of ${N}`)
    const mailboxPerS = N / (totalMs / 1000)
    note(
      `mailbox: ${N} messages, deposits ${Math.round(parkedMs)} ms, collection ${Math.round(totalMs - parkedMs)} ms; ` +
        `direct ${Math.round(directPerS)} msg/s`,
    )
    emit('mailbox.deliveries_per_s', mailboxPerS, 'msg/s', directPerS, 0.1, 'higher')
  } finally {
    for (const stop of stops) await stop().catch(() => {})
    for (const s of sides) {
      await Promise.resolve(s.libp2p.stop()).catch(() => {})
      await s.store.close().catch(() => {})
      await rm(s.dir, { recursive: true, force: true })
    }
  }
}
