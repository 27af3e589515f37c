/**
 * The Merkle audit log (issue 17, SPEC §11):
 *
 * - audit.append_per_s: `AuditLog.append` (hash chain, signature, and the RFC 6962 tree
 *   nodes in the same batch) against the hash chain alone (`merkle: false`: the same
 *   append, without the tree) measured side by side; rounds alternate the two on fresh
 *   stores (synced writes, as the audit sublevel is); target ≥ 0.8×.
 * - audit.inclusion_proof_bytes.n<N> / audit.consistency_proof_bytes.n<N>: proof sizes
 *   in a log of N rows (N = 10³ … 10⁶; the inclusion proof of the middle row, the
 *   consistency proof from N/2 + 1 rows), against the log₂ bound `32 · ⌈log₂ N⌉` bytes
 *   (one node more for a consistency proof; ratio ≤ 1: growth is logarithmic).
 * - audit.inclusion_verify_us.n<N> / audit.consistency_verify_us.n<N>: verification time
 *   of those proofs (µs, the fastest of five batches), against one SHA-256 node hash per level
 *   (`⌈log₂ N⌉` node hashes timed in the same run): the ratio says what a verify costs
 *   beyond its hashing.
 *
 * Trees of 10⁶ rows are built in memory (`MemoryTree`, the same proofs as the stored
 * tree gives); the append rate uses the real store.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AuditLog,
  leafHash,
  MemoryTree,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { type BenchResult, emit, note, type ResultName } from './report.ts'

const SIZES = [1_000, 10_000, 100_000, 1_000_000] as const

export const AUDIT_NAMES: ResultName[] = [
  { name: 'audit.append_per_s', unit: 'appends/s', better: 'higher' },
  ...SIZES.flatMap((n): ResultName[] => [
    { name: `audit.inclusion_proof_bytes.n${n}`, unit: 'bytes', better: 'lower' },
    { name: `audit.consistency_proof_bytes.n${n}`, unit: 'bytes', better: 'lower' },
    { name: `audit.inclusion_verify_us.n${n}`, unit: 'us', better: 'lower' },
    { name: `audit.consistency_verify_us.n${n}`, unit: 'us', better: 'lower' },
  ]),
]

export interface AuditBenchInit {
  /** Appends per side and round; default 500. */
  perRound?: number
  /** Rounds (after a warm-up); default 3. */
  rounds?: number
  /** Proofs verified per size; default 20 000. */
  verifies?: number
}

async function withStore<T>(run: (store: MeshStore) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-bench-audit-'))
  const store = new MeshStore({ path: join(dir, 'db') })
  await store.open()
  try {
    return await run(store)
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** Appends per second through the audit log: with its tree, or (`merkle: false`) the hash chain alone. */
async function appendRate(key: Ed25519KeyPair, n: number, merkle: boolean): Promise<number> {
  return withStore(async (store) => {
    const audit = new AuditLog({ store, key, merkle })
    await audit.start()
    const t0 = performance.now()
    for (let i = 0; i < n; i++)
      await audit.append({ action: 'bench.row', subject: `row-${i}`, details: { i } })
    const ms = performance.now() - t0
    await audit.stop()
    return (n * 1000) / ms
  })
}

/** µs per call of `run`, the fastest of five batches (other load on the machine only slows a batch down). */
function microsPerCall(calls: number, run: () => void): number {
  let best = Number.POSITIVE_INFINITY
  const batch = Math.max(1, Math.floor(calls / 5))
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) run()
    best = Math.min(best, ((performance.now() - t0) * 1000) / batch)
  }
  return best
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

export async function* benchAudit(init: AuditBenchInit = {}): AsyncGenerator<BenchResult> {
  const perRound = init.perRound ?? 500
  const rounds = init.rounds ?? 3
  const verifies = init.verifies ?? 20_000
  const key = Ed25519KeyPair.generate()

  await appendRate(key, 100, true)
  await appendRate(key, 100, false)
  const tree: number[] = []
  const chain: number[] = []
  for (let r = 0; r < rounds; r++) {
    chain.push(await appendRate(key, perRound, false))
    tree.push(await appendRate(key, perRound, true))
    note(
      `audit append round ${r + 1}: tree ${tree.at(-1)?.toFixed(0)}/s, chain ${chain.at(-1)?.toFixed(0)}/s`,
    )
  }
  yield emit('audit.append_per_s', mean(tree), 'appends/s', mean(chain), 0.8, 'higher')

  const memory = new MemoryTree()
  let built = 0
  for (const n of SIZES) {
    for (; built < n; built++) memory.appendLeaf(leafHash(Buffer.from(`row ${built}`)))
    const levels = Math.ceil(Math.log2(n))
    const root = memory.root(n)
    const middle = Math.floor(n / 2)
    const inclusion = memory.inclusionProof(middle, n)
    const from = Math.floor(n / 2) + 1
    const consistency = memory.consistencyProof(from, n)
    const fromRoot = memory.root(from)
    const leaf = leafHash(Buffer.from(`row ${middle}`))
    yield emit(`audit.inclusion_proof_bytes.n${n}`, inclusion.length * 32, 'bytes', levels * 32, 1, 'lower')
    // A consistency proof may need one node more than the levels (RFC 6962 §2.1.2).
    yield emit(
      `audit.consistency_proof_bytes.n${n}`,
      consistency.length * 32,
      'bytes',
      (levels + 1) * 32,
      1,
      'lower',
    )

    // One node hash per level: the hashing a verify cannot avoid.
    const a = Buffer.alloc(32, 1)
    const hashUs = microsPerCall(verifies, () => {
      for (let l = 0; l < levels; l++) nodeHash(a, a)
    })
    let ok = true
    const inclusionUs = microsPerCall(verifies, () => {
      ok &&= verifyInclusion(middle, n, leaf, inclusion, root)
    })
    const consistencyUs = microsPerCall(verifies, () => {
      ok &&= verifyConsistency(from, n, consistency, fromRoot, root)
    })
    if (!ok) throw new Error(`a proof at ${n} did not verify`)
    yield emit(`audit.inclusion_verify_us.n${n}`, inclusionUs, 'us', hashUs, 3, 'lower')
    yield emit(`audit.consistency_verify_us.n${n}`, consistencyUs, 'us', hashUs, 4, 'lower')
  }
}
