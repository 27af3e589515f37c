/**
 * `npm run bench` (SPEC §7): every benchmark of the node, one JSON result a line on
 * stdout; progress and diagnostics on stderr. Each benchmark stops every node and
 * process it started, whatever happens; one that fails writes its lines with null
 * values and `met: false`, and the others still run.
 *
 * - node.cold_start_ms: `mesh start` to its ready line vs a bare js-libp2p process.
 * - dht.lookup_*.n16 / .n64 / .n256: mesh lookups vs stock kad-dht, and vs the loopback round
 *   trip (each network's nodes spread over child processes, bench/dht-worker.ts); how many
 *   the walk answered rather than a connected neighbour (dht.lookup_by_walk).
 * - dht.sim_*.n1000 / .n10000 / .n100000: Kademlia lookups simulated with the node's k, α and
 *   paths over simulated links; hops and time against ⌈log2 N / log2 k⌉ + 1 round trips, and
 *   per log2 N against the smallest network's (bench/dht-sim.ts, issue 15).
 * - discovery.new_mesh_visible_ms.n16: a new public mesh until all 16 others list it.
 * - federation.* (bench/federation.ts) and authority.* (bench/authority.ts), written as
 *   their generators yield them.
 * - http.signin_per_s / http.read_per_s: the HTTP API with its rate limits on vs off
 *   (bench/http-limits.ts).
 *
 * - sessions.signin_per_s / sessions.capability_open_per_s: sign-ins and capability-session
 *   opens vs raw Ed25519 verifications of the same payload size (bench/sessions.ts).
 *
 * - audit.append_per_s (Merkle tree vs hash chain alone), audit.*_proof_bytes.n10³…10⁶ and
 *   audit.*_verify_us (bench/audit.ts, issue 17).
 * - rooms.*: durable messages, catch-up bytes, room load and memory, validation as a room
 *   grows, relay between two meshes (bench/rooms.ts, issue 15).
 *
 * - relay.connect_ms / relay.throughput_mib_s: a relayed connection vs a direct one (bench/relay.ts,
 *   issue 16).
 * - mailbox.deliveries_per_s: messages through a relay's mailbox vs sent directly (bench/mailbox.ts,
 *   issue 16).
 *
 * - model.proxy_overhead_p50_ms / model.proxy_stream_overhead_p50_ms: a chat completion
 *   through the model proxy vs straight to its upstream (bench/model.ts, issue 18).
 *
 * - files.transfer_mib_s: a file over /mesh/files/1.0.0 vs a raw stream on the same
 *   connection (bench/files.ts, issue 18).
 *
 * `npm run bench -- dht federation` runs only the benchmarks whose title contains one
 * of the words given.
 */
// issue 17: the Merkle audit log
import { AUDIT_NAMES, benchAudit } from './bench/audit.ts'
import { benchAuthority } from './bench/authority.ts'
import { benchColdStart, COLD_START_NAMES } from './bench/cold-start.ts'
import { benchDhtLookup, dhtLookupNames } from './bench/dht-lookup.ts'
import { benchDhtSim, dhtSimNames } from './bench/dht-sim.ts'
import { benchFederation } from './bench/federation.ts'
// files in rooms (issue 18): /mesh/files against a raw libp2p stream
import { benchFiles, FILES_NAMES } from './bench/files.ts'
import { benchHttpLimits, HTTP_LIMITS_NAMES } from './bench/http-limits.ts'
// issue 16: store and forward — mailbox deliveries against a direct exchange
import { benchMailbox, MAILBOX_NAMES } from './bench/mailbox.ts'
// issue 18: the model proxy's overhead per request
import { benchModel, MODEL_NAMES } from './bench/model.ts'
import { benchNewMeshVisible, newMeshVisibleNames } from './bench/new-mesh-visible.ts'
import { NodePool } from './bench/nodes.ts'
// issue 16: reachability — relayed against direct connections
import { benchRelay, RELAY_NAMES } from './bench/relay.ts'
import { emit, note, type ResultName, wasEmitted, write } from './bench/report.ts'
// rooms at speed and at scale (issue 15, SPEC §14): the rooms benchmarks
import { ROOMS_BENCHES } from './bench/rooms.ts'
// agents in foreign rooms (issue 12): sign-ins and capability sessions vs raw Ed25519
import { benchSessions, SESSIONS_NAMES } from './bench/sessions.ts'

interface Bench {
  title: string
  /** Results it writes, so that a failure still reports each as unmeasured. */
  names: ResultName[]
  run(pool: NodePool): Promise<void>
}

const benches: Bench[] = [
  { title: 'cold start', names: COLD_START_NAMES, run: (pool) => benchColdStart({ pool }) },
  ...[16, 64, 256].map(
    (n): Bench => ({
      title: `DHT lookups, ${n} meshes`,
      names: dhtLookupNames(n),
      run: () => benchDhtLookup({ n, lookups: n === 16 ? 200 : 100 }),
    }),
  ),
  // issue 15: Kademlia lookups simulated at 1,000 / 10,000 / 100,000 meshes (bench/dht-sim.ts)
  { title: 'DHT simulation', names: dhtSimNames(), run: async () => void benchDhtSim() },
  {
    title: 'new mesh visible, 16 meshes',
    names: newMeshVisibleNames(16),
    run: (pool) => benchNewMeshVisible({ n: 16, pool }),
  },
  {
    title: 'federation',
    names: [
      { name: 'federation.connect_to_accepted_ms', unit: 'ms', better: 'lower' },
      { name: 'federation.envelope_verify_ratio', unit: 'ratio', better: 'higher' },
    ],
    run: async () => {
      for await (const result of benchFederation({ note })) write(result)
    },
  },
  {
    title: 'http rate limits',
    names: HTTP_LIMITS_NAMES,
    run: async () => {
      for await (const result of benchHttpLimits()) write(result)
    },
  },
  {
    title: 'authority',
    // named per chain depth as it runs; a failure is reported on stderr
    names: [],
    run: async () => {
      for await (const result of benchAuthority()) write(result)
    },
  },
  // issue 12: sessions.signin_per_s, sessions.capability_open_per_s (bench/sessions.ts)
  { title: 'sessions', names: SESSIONS_NAMES, run: async () => void (await benchSessions()) },
  // issue 17: audit.append_per_s (tree vs chain), proof sizes and verify times at 10³…10⁶ (bench/audit.ts)
  {
    title: 'audit merkle log',
    names: AUDIT_NAMES,
    run: async () => {
      for await (const result of benchAudit()) void result
    },
  },
  // issue 15: rooms.* (bench/rooms.ts)
  ...ROOMS_BENCHES,
  // issue 16: relay.connect_ms, relay.throughput_mib_s — relayed vs direct (bench/relay.ts)
  { title: 'relay vs direct', names: RELAY_NAMES, run: (pool) => benchRelay(pool) },
  // issue 18: model.proxy_overhead_p50_ms, model.proxy_stream_overhead_p50_ms — through the proxy vs straight (bench/model.ts)
  { title: 'model proxy', names: MODEL_NAMES, run: () => benchModel() },
  // issue 16: store and forward — mailbox.deliveries_per_s vs a direct exchange (bench/mailbox.ts)
  { title: 'mailbox vs direct', names: MAILBOX_NAMES, run: () => benchMailbox() },
  // issue 18: files.transfer_mib_s — /mesh/files/1.0.0 vs a raw stream on the same connection (bench/files.ts)
  { title: 'files', names: FILES_NAMES, run: (pool) => benchFiles(pool) },
]

let pool: NodePool | undefined
let stopping = false
const interrupt = (): void => {
  if (stopping) return
  stopping = true
  note('interrupted: stopping every node')
  void (pool?.stopAll() ?? Promise.resolve()).finally(() => process.exit(130))
}
process.on('SIGINT', interrupt)
process.on('SIGTERM', interrupt)

const only = process.argv.slice(2).map((word) => word.toLowerCase())
const chosen = benches.filter(
  (bench) => only.length === 0 || only.some((word) => bench.title.toLowerCase().includes(word)),
)
const started = performance.now()
for (const bench of chosen) {
  const t0 = performance.now()
  note(`${bench.title}…`)
  pool = new NodePool()
  try {
    await bench.run(pool)
  } catch (err) {
    note(`${bench.title} failed: ${(err as Error).stack ?? String(err)}`)
  } finally {
    await pool.stopAll()
  }
  for (const { name, unit, better } of bench.names) {
    if (!wasEmitted(name)) emit(name, null, unit, null, 1, better)
  }
  note(`${bench.title} done in ${Math.round((performance.now() - t0) / 1000)} s`)
}
note(`all benchmarks done in ${Math.round((performance.now() - started) / 1000)} s`)
// libp2p and level may leave timers behind after stop; every node is stopped by now.
process.exit(0)
