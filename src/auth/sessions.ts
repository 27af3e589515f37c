import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import {
  ForbiddenError,
  MeshError,
  ReplayError,
  SignatureMismatchError,
  UnauthenticatedError,
} from '../errors.ts'
import { isDidKey, verifySignature } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
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
  /** How often expired sessions are deleted from the store (also once at start); default 600 000 ms. */
  purgeIntervalMs?: number
  logger?: Logger
}

export type SessionRole = 'architect' | 'human' | 'agent'

export interface Session {
  /** Names the session (the hash of its token, never the token): what a logout revokes. */
  id: string
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

// A challenge nonce: expiry (ms, 6 bytes) ‖ 16 random bytes ‖ the first 16 bytes of their HMAC.
const NONCE_BYTES = 6 + 16 + 16

/**
 * Challenge/response sessions. A challenge is stateless: its nonce carries its expiry
 * and an HMAC under a key of this process, so issuing one stores nothing and no flood
 * of challenges can push out another client's. A nonce is single-use: a spent one is
 * remembered until it would have expired (only successful sign-ins spend one), so a
 * replay gets MESH_REPLAY. Tokens are stored hashed, so the store never holds a usable
 * token; expired sessions are deleted at start and every `purgeIntervalMs`.
 */
export class SessionService {
  readonly #init: SessionServiceInit
  readonly #challengeTtlMs: number
  readonly #sessionTtlMs: number
  readonly #secret = randomBytes(32)
  readonly #spent = new Map<string, number>()
  #nextSweep = 0
  readonly #sessions: Sublevel<StoredSession>
  // rooms cost (issue 15): sessions read once are kept in memory (a LevelDB get per request was
  // alpha's largest self item in the relay bench); a revocation bumps the generation, so a read
  // under way when it happened is not cached.
  readonly #cache = new Map<string, StoredSession>()
  #cacheGeneration = 0
  readonly #revoked = new Set<(session: { id: string; did: string }) => void>()
  readonly #log: Logger
  /** members: how many times each did's sessions were ended, to catch a sign-in racing a removal. */
  readonly #endings = new Map<string, number>()
  #purger?: ReturnType<typeof setInterval>

  constructor(init: SessionServiceInit) {
    this.#init = init
    this.#challengeTtlMs = init.challengeTtlMs ?? 60_000
    this.#sessionTtlMs = init.sessionTtlMs ?? 12 * 3600_000
    this.#sessions = init.store.sublevel<StoredSession>('sessions')
    this.#log = (init.logger ?? silentLogger()).child({ area: 'auth.sessions' })
  }

  /** Deletes the sessions that expired while the node was down, then keeps purging. */
  async start(): Promise<void> {
    await this.purgeExpired()
    this.#purger = setInterval(() => {
      this.purgeExpired().catch((err: unknown) =>
        this.#log.error({ event: 'auth.sessions.purge_failed', err }, 'could not purge expired sessions'),
      )
    }, this.#init.purgeIntervalMs ?? 600_000)
    this.#purger.unref()
  }

  stop(): void {
    clearInterval(this.#purger)
    this.#purger = undefined
  }

  challenge(): { nonce: string; expiresAt: string } {
    const expiresAt = Date.now() + this.#challengeTtlMs
    const body = Buffer.alloc(6 + 16)
    body.writeUIntBE(expiresAt, 0, 6)
    randomBytes(16).copy(body, 6)
    const nonce = Buffer.concat([body, this.#mac(body)]).toString('base64url')
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
    const expiresAt = this.#nonceExpiry(input.nonce)
    if (expiresAt === undefined || expiresAt <= now) {
      throw new UnauthenticatedError('unknown or expired challenge nonce')
    }
    const signed = new TextEncoder().encode(sessionChallengeText(this.#init.meshDid, input.nonce))
    if (!verifySignature(input.did, signed, Buffer.from(input.signature, 'base64url'))) {
      // A failed attempt does not burn the nonce: otherwise anyone who sees it could deny the signer.
      throw new SignatureMismatchError('signature does not match the challenge for this did')
    }
    this.#spent.set(input.nonce, expiresAt)
    const ending = this.#endings.get(input.did) ?? 0
    const role = await this.#init.roleOf(input.did)
    if (role === undefined)
      throw new ForbiddenError('this did is not a member of this mesh', { did: input.did })
    const token = randomBytes(32).toString('base64url')
    const sessionExpiresAt = now + this.#sessionTtlMs
    await this.#sessions.put(hashToken(token), { did: input.did, role, expiresAt: sessionExpiresAt })
    if ((this.#endings.get(input.did) ?? 0) !== ending) {
      // Its sessions were ended (a member removed) while this one was being opened.
      await this.#sessions.del(hashToken(token))
      throw new ForbiddenError('this did is not a member of this mesh', { did: input.did })
    }
    return { token, expiresAt: new Date(sessionExpiresAt).toISOString() }
  }

  /** The session behind a bearer token; MESH_UNAUTHENTICATED if none or expired. */
  async authenticate(token: string | undefined): Promise<Session> {
    if (token === undefined || token.length === 0 || token.length > 256) {
      throw new UnauthenticatedError('a bearer token is required')
    }
    const id = hashToken(token)
    let stored = this.#cache.get(id)
    if (stored === undefined) {
      const generation = this.#cacheGeneration
      stored = await this.#sessions.get(id)
      if (stored !== undefined && generation === this.#cacheGeneration) {
        if (this.#cache.size >= 10_000) this.#cache.clear()
        this.#cache.set(id, stored)
      }
    }
    if (stored === undefined || stored.expiresAt <= Date.now()) {
      throw new UnauthenticatedError('invalid or expired session token')
    }
    return { id, did: stored.did, role: stored.role, expiresAt: new Date(stored.expiresAt).toISOString() }
  }

  /** Ends the session of `token` at once (logout); what holds it open (a y-websocket) hears of it. */
  async revoke(token: string): Promise<void> {
    const id = hashToken(token)
    this.#uncache((cachedId) => cachedId === id)
    const stored = await this.#sessions.get(id)
    await this.#sessions.del(id)
    // Again once deleted: a read that began during the delete may have cached it.
    this.#uncache((cachedId) => cachedId === id)
    if (stored === undefined) return
    for (const listener of this.#revoked) listener({ id, did: stored.did })
  }

  /**
   * Ends every session of `did` at once (a member removed): its tokens fail from now on
   * and whatever holds one open (a y-websocket) hears of it. Returns how many ended.
   */
  async endSessionsOf(did: string): Promise<number> {
    this.#endings.set(did, (this.#endings.get(did) ?? 0) + 1)
    this.#uncache((_, cached) => cached.did === did)
    const ended: string[] = []
    for await (const [id, stored] of this.#sessions.iterator()) if (stored.did === did) ended.push(id)
    if (ended.length > 0) await this.#sessions.batch(ended.map((key) => ({ type: 'del' as const, key })))
    this.#uncache((_, cached) => cached.did === did)
    for (const id of ended) for (const listener of this.#revoked) listener({ id, did })
    return ended.length
  }

  /** Calls `listener` with each session revoked from now on; returns the unsubscribe. */
  onRevoked(listener: (session: { id: string; did: string }) => void): () => void {
    this.#revoked.add(listener)
    return () => this.#revoked.delete(listener)
  }

  /** Deletes every expired session from the store; returns how many. */
  async purgeExpired(): Promise<number> {
    const now = Date.now()
    for (const [id, cached] of this.#cache) if (cached.expiresAt <= now) this.#cache.delete(id)
    const expired: string[] = []
    for await (const [id, stored] of this.#sessions.iterator()) if (stored.expiresAt <= now) expired.push(id)
    if (expired.length > 0) await this.#sessions.batch(expired.map((key) => ({ type: 'del' as const, key })))
    if (expired.length > 0)
      this.#log.debug({ event: 'auth.sessions.purged', count: expired.length }, 'expired sessions purged')
    return expired.length
  }

  /** Drops cached sessions (`which`) and voids the reads under way (see `#cache`). */
  #uncache(which: (id: string, session: StoredSession) => boolean): void {
    this.#cacheGeneration++
    for (const [id, cached] of this.#cache) if (which(id, cached)) this.#cache.delete(id)
  }

  #mac(body: Buffer): Buffer {
    return createHmac('sha256', this.#secret).update(body).digest().subarray(0, 16)
  }

  #nonceExpiry(nonce: string): number | undefined {
    const bytes = Buffer.from(nonce, 'base64url')
    if (bytes.length !== NONCE_BYTES || bytes.toString('base64url') !== nonce) return undefined
    const body = bytes.subarray(0, 6 + 16)
    if (!timingSafeEqual(bytes.subarray(6 + 16), this.#mac(body))) return undefined
    return body.readUIntBE(0, 6)
  }

  // The spent set is bounded by the sign-ins of one challenge lifetime; swept once per lifetime.
  #sweep(now: number): void {
    if (now < this.#nextSweep) return
    this.#nextSweep = now + this.#challengeTtlMs
    for (const [nonce, exp] of this.#spent) if (exp <= now) this.#spent.delete(nonce)
  }
}
