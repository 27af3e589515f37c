/**
 * Federation benchmarks (issue 3), as SPEC §7 result objects:
 *
 * - `federation.connect_to_accepted_ms`: two in-process nodes on loopback, the target
 *   with policy autoAccept; from the architect's `request` to the requester's record
 *   reading `accepted` (act check, outbox, dial reuse, signed request, verify, policy,
 *   two audited batches, signed ack). Median of `runs`; baseline the libp2p ping round
 *   trip between the same two nodes, measured in the same run.
 * - `federation.envelope_verify_ratio`: signed envelopes verified per second by
 *   EnvelopeVerifier (fresh ids: the replay set is consulted and claimed each time)
 *   over raw node:crypto Ed25519 verifications per second of the same bytes, measured
 *   alternately in the same run. Target ≥ 0.8.
 *
 * `scripts/bench.ts` drives it: `for await (const result of benchFederation()) …`.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actCapability, invocationToken, proofOf } from '../../src/cli/chains.ts'
import {
  CONNECT_PROTOCOLS,
  createEnvelope,
  EnvelopeVerifier,
  encodeEnvelope,
  MESH_CONNECT_PROTOCOL,
} from '../../src/connections/index.ts'
import { canonicalBytes, Ed25519KeyPair, HumanKeystore, peerIdFromDid } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode, type MeshNode } from '../../src/mesh-node.ts'
import { MeshStore } from '../../src/store/index.ts'

export interface FederationBenchResult {
  name: string
  value: number | null
  unit: string
  baseline: number | null
  ratio: number | null
  target: number
  better: 'higher' | 'lower'
  met: boolean
}

export interface FederationBenchInit {
  /** Connect-to-accepted runs (after one warm-up); default 15. */
  runs?: number
  /** Envelopes verified per round; default 2 000. */
  verifications?: number
  /** Alternating rounds of each verification kind; default 5. */
  rounds?: number
  /** Progress lines (stderr in scripts/bench.ts); default none. */
  note?: (message: string) => void
}

export const FEDERATION_BENCH_NAMES = [
  'federation.connect_to_accepted_ms',
  'federation.envelope_verify_ratio',
]

/** Connect-to-accepted may cost this many pings (each ping opens a stream and makes one round trip; the handshake adds verification and two signed, audited writes per side). */
const CONNECT_TARGET_RATIO = 10

export async function* benchFederation(
  init: FederationBenchInit = {},
): AsyncGenerator<FederationBenchResult> {
  yield await connectToAccepted(init)
  yield await envelopeVerifyRatio(init)
}

async function connectToAccepted(init: FederationBenchInit): Promise<FederationBenchResult> {
  const runs = init.runs ?? 15
  const root = await mkdtemp(join(tmpdir(), 'mesh-bench-fed-'))
  const nodes: MeshNode[] = []
  try {
    const keystore = new HumanKeystore(join(root, 'keys'))
    const start = async (name: string) => {
      const dataDir = join(root, name)
      const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
      await store.open()
      await initMesh({ store, dataDir, name, keystore })
      await store.close()
      const node = createMeshNode({
        dataDir,
        http: { host: '127.0.0.1', port: 0 },
        logger: silentLogger(),
        discovery: { intervalMs: 600_000 },
        connections: { probeIntervalMs: 0, retryBaseMs: 50, retryMaxMs: 200 },
      })
      await node.start()
      nodes.push(node)
      return { node, architect: await keystore.load(`${name}-architect`) }
    }
    const a = await start('bench-a')
    const b = await start('bench-b')
    await b.node.policy.put({ ...(await b.node.policy.get()), autoAccept: true }, { actor: 'bench' })
    const target = b.node.multiaddrs()[0] as string
    // Human-signed UCAN chains, as the CLI signs them (the root delegation as proof).
    const rootDelegation = proofOf((a.node.authority.rootDelegation() as { token: string }).token)
    const act = (kind: string, subject: string) =>
      invocationToken(a.architect, a.node.did, actCapability(a.node.did, kind, subject), [rootDelegation])

    const times: number[] = []
    const pings: number[] = []
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now()
      const view = await a.node.connections.request({
        target,
        ucan: await act('mesh/connect', b.node.did),
        actor: a.architect.did,
      })
      for (;;) {
        if ((await a.node.connections.get(view.id)).status === 'accepted') break
        await new Promise((resolve) => setImmediate(resolve))
      }
      const ms = performance.now() - t0
      // libp2p's own rtt is whole milliseconds; time the call instead
      const p0 = performance.now()
      await a.node.libp2p.services.ping.ping(peerIdFromDid(b.node.did))
      pings.push(performance.now() - p0)
      await a.node.connections.disconnect(view.id, {
        ucan: await act('connection/disconnect', view.id),
        actor: a.architect.did,
      })
      // the disconnect reaches b before the next request, which b would otherwise refuse
      for (;;) {
        if ((await b.node.connections.get(view.id)).status === 'disconnected') break
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      if (i > 0) times.push(ms) // run 0 warms up (first dial, JIT)
    }
    const value = median(times)
    const baseline = median(pings)
    init.note?.(`connect→accepted ${fmt(times)} ms | ping ${fmt(pings)} ms`)
    return result('federation.connect_to_accepted_ms', value, 'ms', baseline, CONNECT_TARGET_RATIO, 'lower')
  } finally {
    for (const node of nodes.reverse()) await node.stop()
    await rm(root, { recursive: true, force: true })
  }
}

async function envelopeVerifyRatio(init: FederationBenchInit): Promise<FederationBenchResult> {
  const n = init.verifications ?? 2000
  const rounds = init.rounds ?? 5
  const root = await mkdtemp(join(tmpdir(), 'mesh-bench-env-'))
  const store = new MeshStore({ path: join(root, 'db') })
  await store.open()
  try {
    const sender = Ed25519KeyPair.generate()
    const receiver = Ed25519KeyPair.generate()
    const verifier = new EnvelopeVerifier({
      store,
      selfDid: () => receiver.did,
      protocols: CONNECT_PROTOCOLS,
    })
    const body = {
      connectionId: 'a'.repeat(32),
      requestNonce: 'b'.repeat(22),
      agreementVersion: 1,
      architectDid: Ed25519KeyPair.generate().did,
      decidedAt: Date.now(),
    }
    const publicKey = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), sender.publicKey]),
      format: 'der',
      type: 'spki',
    })
    const envelopeRates: number[] = []
    const rawRates: number[] = []
    for (let round = 0; round <= rounds; round++) {
      // Fresh envelopes every round: each id is new to the verifier.
      const envelopes = Array.from({ length: n }, () =>
        createEnvelope(sender, {
          type: 'connect.accept',
          target: receiver.did,
          protocol: MESH_CONNECT_PROTOCOL,
          body,
        }),
      )
      const wire = envelopes.map((e) => encodeEnvelope(e))
      const raw = envelopes.map((e) => {
        const { signature, ...content } = e
        return { data: canonicalBytes(content), signature: Buffer.from(signature, 'base64url') }
      })
      let t0 = performance.now()
      for (const bytes of wire) await verifier.verify(bytes, { remoteDid: sender.did })
      const envelopeRate = n / ((performance.now() - t0) / 1000)
      t0 = performance.now()
      for (const r of raw) {
        if (!cryptoVerify(null, r.data, publicKey, r.signature)) throw new Error('raw verify failed')
      }
      const rawRate = n / ((performance.now() - t0) / 1000)
      if (round === 0) continue // warm-up
      envelopeRates.push(envelopeRate)
      rawRates.push(rawRate)
    }
    init.note?.(`envelopes verified/s ${fmt(envelopeRates)} | raw ed25519 verify/s ${fmt(rawRates)}`)
    return result(
      'federation.envelope_verify_ratio',
      median(envelopeRates),
      'verifications/s',
      median(rawRates),
      0.8,
      'higher',
    )
  } finally {
    await store.close()
    await rm(root, { recursive: true, force: true })
  }
}

function result(
  name: string,
  value: number,
  unit: string,
  baseline: number,
  target: number,
  better: 'higher' | 'lower',
): FederationBenchResult {
  const ratio = round(value / baseline)
  return {
    name,
    value: round(value),
    unit,
    baseline: round(baseline),
    ratio,
    target,
    better,
    met: better === 'lower' ? ratio <= target : ratio >= target,
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

function fmt(values: number[]): string {
  return `median ${median(values).toFixed(2)} (min ${Math.min(...values).toFixed(2)}, max ${Math.max(...values).toFixed(2)})`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for await (const line of benchFederation({ note: (m) => process.stderr.write(`[bench] ${m}\n`) })) {
    process.stdout.write(`${JSON.stringify(line)}\n`)
  }
}
