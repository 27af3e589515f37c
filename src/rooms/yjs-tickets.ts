import { randomBytes } from 'node:crypto'
import type { Session } from '../auth/index.ts'

export interface YjsTicketsInit {
  /** How long a ticket may wait for its connection; default 60 000 ms (never past its session's end). */
  ttlMs?: number
  /** Unused tickets kept per session; a new one past this drops the session's oldest; default 16. */
  maxPerSession?: number
}

export interface YjsTicket {
  session: Session
  roomId: string
  expiresAt: number
}

interface Held extends YjsTicket {
  issuedAt: number
}

/**
 * Tickets for the y-websocket URL (`?token=<ticket>`): short-lived, single-use and bound
 * to one room and one session, so that what a URL leaks to a proxy log, the browser
 * history or a Referer is worth nothing a minute later, and never the session token.
 * Kept in memory: a restart voids them, which costs a client one more request.
 */
export class YjsTickets {
  readonly #ttlMs: number
  readonly #maxPerSession: number
  // Insertion order is issue order, so expired tickets are always at the front.
  readonly #tickets = new Map<string, Held>()
  readonly #bySession = new Map<string, string[]>()

  constructor(init: YjsTicketsInit = {}) {
    this.#ttlMs = init.ttlMs ?? 60_000
    this.#maxPerSession = init.maxPerSession ?? 16
  }

  issue(session: Session, roomId: string): { ticket: string; expiresAt: string } {
    const now = Date.now()
    this.#sweep(now)
    const ticket = randomBytes(32).toString('base64url')
    const expiresAt = Math.min(now + this.#ttlMs, Date.parse(session.expiresAt))
    this.#tickets.set(ticket, { session, roomId, expiresAt, issuedAt: now })
    const own = this.#bySession.get(session.id) ?? []
    own.push(ticket)
    while (own.length > this.#maxPerSession) this.#tickets.delete(own.shift() as string)
    this.#bySession.set(session.id, own)
    return { ticket, expiresAt: new Date(expiresAt).toISOString() }
  }

  /** The ticket's grant, spent by this call; undefined when unknown, spent or expired. */
  redeem(ticket: string): YjsTicket | undefined {
    const held = this.#tickets.get(ticket)
    if (held === undefined) return undefined
    this.#forget(ticket, held)
    if (held.expiresAt <= Date.now()) return undefined
    return { session: held.session, roomId: held.roomId, expiresAt: held.expiresAt }
  }

  /** Voids every unused ticket of a session (at logout). */
  revokeSession(sessionId: string): void {
    for (const ticket of this.#bySession.get(sessionId) ?? []) this.#tickets.delete(ticket)
    this.#bySession.delete(sessionId)
  }

  get size(): number {
    return this.#tickets.size
  }

  #forget(ticket: string, held: Held): void {
    this.#tickets.delete(ticket)
    const own = this.#bySession.get(held.session.id)
    if (own === undefined) return
    const i = own.indexOf(ticket)
    if (i >= 0) own.splice(i, 1)
    if (own.length === 0) this.#bySession.delete(held.session.id)
  }

  #sweep(now: number): void {
    for (const [ticket, held] of this.#tickets) {
      if (held.issuedAt + this.#ttlMs > now) break
      this.#forget(ticket, held)
    }
  }
}
