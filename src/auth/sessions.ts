import { createHash, randomBytes } from 'node:crypto'
import {
  ForbiddenError,
  MeshError,
  ReplayError,
  SignatureMismatchError,
  UnauthenticatedError,
} from '../errors.ts'
import { isDidKey, verifySignature } from '../identity/index.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'

export interface SessionServiceInit {
  store: MeshStore
  /** This mesh's did: the challenge text names it, so a signature for one mesh is useless at another. */
  meshDid: string
  /** The role of a principal of this mesh, or undefined when it may not sign in. */
  roleOf: (did: string) => Promise<SessionRole | undefined>
  /** How long a challenge nonce stays usable; default 60 s. */
  challengeTtlMs?: number
  /** How long a session token lives; default 12 h. */
  sessionTtlMs?: number
  /** Most challenges outstanding at once (oldest dropped first); default 10 000. */
  maxPendingChallenges?: number
}

export type SessionRole = 'architect' | 'human' | 'agent'

export interface Session {
  did: string
  role: SessionRole
  expiresAt: string
}

interface StoredSession {
  did: string
  role: SessionRole
  expiresAt: number
}

/** The text a principal signs to open a session at this mesh (SPEC §3). */
export function sessionChallengeText(meshDid: string, nonce: string): string {
  return `mesh-session:${meshDid}:${nonce}`
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('base64url')

/**
 * Challenge/response sessions. A nonce is single-use and short-lived; a spent nonce
 * is remembered until it would have expired, so a replay gets MESH_REPLAY rather than
 * a vaguer error. Tokens are stored hashed, so the store never holds a usable token.
 */
export class SessionService {
  readonly #init: SessionServiceInit
  readonly #challengeTtlMs: number
  readonly #sessionTtlMs: number
  readonly #maxPending: number
  readonly #pending = new Map<string, number>()
  readonly #spent = new Map<string, number>()
  readonly #sessions: Sublevel<StoredSession>

  constructor(init: SessionServiceInit) {
    this.#init = init
    this.#challengeTtlMs = init.challengeTtlMs ?? 60_000
    this.#sessionTtlMs = init.sessionTtlMs ?? 12 * 3600_000
    this.#maxPending = init.maxPendingChallenges ?? 10_000
    this.#sessions = init.store.sublevel<StoredSession>('sessions')
  }

  challenge(): { nonce: string; expiresAt: string } {
    const now = Date.now()
    this.#sweep(now)
    while (this.#pending.size >= this.#maxPending) {
      const oldest = this.#pending.keys().next().value
      if (oldest === undefined) break
      this.#pending.delete(oldest)
    }
    const nonce = randomBytes(24).toString('base64url')
    const expiresAt = now + this.#challengeTtlMs
    this.#pending.set(nonce, expiresAt)
    return { nonce, expiresAt: new Date(expiresAt).toISOString() }
  }

  async open(input: {
    did: string
    nonce: string
    signature: string
  }): Promise<{ token: string; expiresAt: string }> {
    const now = Date.now()
    this.#sweep(now)
    if (!isDidKey(input.did)) throw new MeshError('MESH_BAD_REQUEST', 'did must be an Ed25519 did:key')
    if (this.#spent.has(input.nonce)) throw new ReplayError('this challenge nonce was already used')
    const expiresAt = this.#pending.get(input.nonce)
    if (expiresAt === undefined) throw new UnauthenticatedError('unknown or expired challenge nonce')
    const signed = new TextEncoder().encode(sessionChallengeText(this.#init.meshDid, input.nonce))
    if (!verifySignature(input.did, signed, Buffer.from(input.signature, 'base64url'))) {
      // A failed attempt does not burn the nonce: otherwise anyone who sees it could deny the signer.
      throw new SignatureMismatchError('signature does not match the challenge for this did')
    }
    this.#pending.delete(input.nonce)
    this.#spent.set(input.nonce, expiresAt)
    const role = await this.#init.roleOf(input.did)
    if (role === undefined)
      throw new ForbiddenError('this did is not a member of this mesh', { did: input.did })
    const token = randomBytes(32).toString('base64url')
    const sessionExpiresAt = now + this.#sessionTtlMs
    await this.#sessions.put(hashToken(token), { did: input.did, role, expiresAt: sessionExpiresAt })
    return { token, expiresAt: new Date(sessionExpiresAt).toISOString() }
  }

  /** The session behind a bearer token; MESH_UNAUTHENTICATED if none or expired. */
  async authenticate(token: string | undefined): Promise<Session> {
    if (token === undefined || token.length === 0 || token.length > 256) {
      throw new UnauthenticatedError('a bearer token is required')
    }
    const stored = await this.#sessions.get(hashToken(token))
    if (stored === undefined || stored.expiresAt <= Date.now()) {
      throw new UnauthenticatedError('invalid or expired session token')
    }
    return { did: stored.did, role: stored.role, expiresAt: new Date(stored.expiresAt).toISOString() }
  }

  async revoke(token: string): Promise<void> {
    await this.#sessions.del(hashToken(token))
  }

  #sweep(now: number): void {
    for (const [nonce, exp] of this.#pending) if (exp <= now) this.#pending.delete(nonce)
    for (const [nonce, exp] of this.#spent) if (exp <= now) this.#spent.delete(nonce)
  }
}
