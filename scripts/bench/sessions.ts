/**
 * Sign-ins and capability-session opens per second, each against the raw Ed25519
 * verification rate measured in the same run (issue 12, SPEC §8): node:crypto `verify`
 * of a payload the size of what each one verifies — the challenge text of a sign-in,
 * the encoded invocation (with its chain) of a session open.
 *
 * - sessions.signin_per_s: whole sign-ins over HTTP (GET /api/session/challenge, an
 *   Ed25519 signature, POST /api/session) by a member, `concurrency` at a time.
 * - sessions.capability_open_per_s: POST /api/session/ucan with a fresh `room/read`
 *   invocation of a foreign key under the architect's chain on one room (invocations
 *   signed before the clock starts), `concurrency` at a time.
 *
 * One in-process node (HTTP on loopback, rate limits far above this traffic) and its
 * client share this process: rates are per second of this process's CPU time (client,
 * server, LevelDB and GC alike), which other load on the machine does not inflate. The
 * raw rate is one verification per operation: the ratio says how much of an operation's
 * cost is everything around the signature check. Rounds alternate raw and measured
 * slices; each result pools its rounds.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issueDelegation, roomResourceOf } from '../../src/auth/authority/index.ts'
import { invocationToken, proofOf } from '../../src/cli/chains.ts'
import { HttpClient, signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { MeshNode } from '../../src/mesh-node.ts'
import { startInProcessMesh } from './in-process-mesh.ts'
import { type BenchResult, emit, note, type ResultName } from './report.ts'

export const SESSIONS_NAMES: ResultName[] = [
  { name: 'sessions.signin_per_s', unit: 'sign-ins/s', better: 'higher' },
  { name: 'sessions.capability_open_per_s', unit: 'sessions/s', better: 'higher' },
]

/**
 * The ratios aimed for: a sign-in does one verification, an HMAC, a LevelDB put and two
 * HTTP requests; a session open one to three verifications (cached delegations cost
 * none), a chain walk, two LevelDB writes and an audit row.
 */
export const SESSIONS_TARGETS = { signIn: 0.02, capabilityOpen: 0.01 } as const

export interface SessionsBenchInit {
  /** Measured rounds (after one warm-up); default 5. */
  rounds?: number
  /** Operations per round and side; default 200. */
  perRound?: number
  /** Requests in flight at once; default 8. */
  concurrency?: number
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function cpuNow(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/** Milliseconds of CPU for `count` raw verifications of a `size`-byte payload. */
function rawVerify(count: number, size: number): number {
  const key = Ed25519KeyPair.generate()
  const keyObject: KeyObject = createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, key.publicKey]),
    format: 'der',
    type: 'spki',
  })
  const payload = Buffer.alloc(size, 7)
  const signature = key.sign(payload)
  const start = cpuNow()
  for (let i = 0; i < count; i++) {
    if (!verify(null, payload, keyObject, signature)) throw new Error('raw verify failed')
  }
  return cpuNow() - start
}

async function inFlight(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0
  const start = cpuNow()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++)
    }),
  )
  return cpuNow() - start
}

export async function benchSessions(init: SessionsBenchInit = {}): Promise<BenchResult[]> {
  const rounds = init.rounds ?? 5
  const perRound = init.perRound ?? 200
  const concurrency = init.concurrency ?? 8
  const root = await mkdtemp(join(tmpdir(), 'mesh-bench-sessions-'))
  let node: MeshNode | undefined
  try {
    const started = await startInProcessMesh(root)
    node = started.node
    const architect = started.architect
    const api = await signIn(node.httpUrl, architect)
    const { id: room } = await api.post<{ id: string }>('/api/rooms', { name: 'bench' })
    const agent = Ed25519KeyPair.generate()
    const rootDelegation = proofOf((node.authority.rootDelegation() as { token: string }).token)
    const grant = await issueDelegation({
      issuer: architect,
      audience: agent.did,
      capabilities: [{ can: 'room/read', with: roomResourceOf(node.did, room) }],
      expiration: Math.floor(Date.now() / 1000) + 3600,
      proofs: [rootDelegation],
    })
    const mesh = node
    const invocations = async (count: number) =>
      Promise.all(
        Array.from({ length: count }, () =>
          invocationToken(agent, mesh.did, { can: 'room/read', with: roomResourceOf(mesh.did, room) }, [
            grant,
          ]),
        ),
      )
    const anon = new HttpClient(node.httpUrl)
    const sampleToken = (await invocations(1))[0] as string
    const signInPayload = Buffer.byteLength(`mesh-session:${node.did}:${'x'.repeat(51)}`)
    const openPayload = Buffer.byteLength(sampleToken, 'base64url')
    note(`sessions: payloads ${signInPayload} B (sign-in), ${openPayload} B (session open)`)

    const totals = {
      signIn: 0,
      signInMs: 0,
      open: 0,
      openMs: 0,
      rawSignIn: 0,
      rawSignInMs: 0,
      rawOpen: 0,
      rawOpenMs: 0,
    }
    for (let r = 0; r <= rounds; r++) {
      const tokens = await invocations(perRound)
      const signInMs = await inFlight(perRound, concurrency, () => signIn(mesh.httpUrl, architect))
      const rawSignInMs = rawVerify(perRound * 20, signInPayload)
      const openMs = await inFlight(perRound, concurrency, (i) =>
        anon.post('/api/session/ucan', { ucan: tokens[i] }),
      )
      const rawOpenMs = rawVerify(perRound * 20, openPayload)
      note(
        `sessions: round ${r}${r === 0 ? ' (warm-up)' : ''}: sign-in ${((perRound / signInMs) * 1000).toFixed(0)}/s, open ${((perRound / openMs) * 1000).toFixed(0)}/s`,
      )
      if (r === 0) continue
      totals.signIn += perRound
      totals.signInMs += signInMs
      totals.open += perRound
      totals.openMs += openMs
      totals.rawSignIn += perRound * 20
      totals.rawSignInMs += rawSignInMs
      totals.rawOpen += perRound * 20
      totals.rawOpenMs += rawOpenMs
    }
    const rate = (n: number, ms: number) => (n / ms) * 1000
    return [
      emit(
        'sessions.signin_per_s',
        rate(totals.signIn, totals.signInMs),
        'sign-ins/s',
        rate(totals.rawSignIn, totals.rawSignInMs),
        SESSIONS_TARGETS.signIn,
        'higher',
      ),
      emit(
        'sessions.capability_open_per_s',
        rate(totals.open, totals.openMs),
        'sessions/s',
        rate(totals.rawOpen, totals.rawOpenMs),
        SESSIONS_TARGETS.capabilityOpen,
        'higher',
      ),
    ]
  } finally {
    await node?.stop()
    await rm(root, { recursive: true, force: true })
  }
}
