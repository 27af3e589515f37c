import { createHash } from 'node:crypto'
import type { MeshStore, Sublevel } from '../../store/index.ts'
import { jwtIssuerOf } from './credentials.ts'

/**
 * Credentials kept for principals (membership credentials this mesh issued, a peer
 * architect's received at the handshake), so later chains through them need not present
 * them: the `credentials` sublevel (`1/<subject>/<sha-256 of the JWT>` → JWT), mirrored
 * in memory. Kept as received; every use verifies them again.
 */
export class HeldCredentials {
  readonly #sub: Sublevel<string>
  readonly #held = new Map<string, Set<string>>()

  constructor(components: { store: MeshStore }) {
    this.#sub = components.store.sublevel<string>('credentials')
  }

  async open(): Promise<void> {
    for await (const [key, jwt] of this.#sub.iterator({ gte: '1/', lt: '1/~' })) {
      const subject = key.slice(2, key.lastIndexOf('/'))
      this.#hold(subject, jwt)
    }
  }

  async put(subject: string, jwt: string): Promise<void> {
    const id = createHash('sha256').update(jwt).digest('base64url')
    await this.#sub.put(`1/${subject}/${id}`, jwt)
    this.#hold(subject, jwt)
  }

  /** The credential JWTs held for `did`. */
  of(did: string): string[] {
    return [...(this.#held.get(did) ?? [])]
  }

  // After a key rotation the credentials the old key issued no longer vouch here.
  /** Whether a credential `issuer` signed is held for `did`. */
  holdsFrom(did: string, issuer: string): boolean {
    return this.of(did).some((jwt) => jwtIssuerOf(jwt) === issuer)
  }

  /** Forgets every credential held for `did` (a member removed); returns the JWTs it held. */
  async drop(did: string): Promise<string[]> {
    const held = this.of(did)
    await this.#sub.batch(
      held.map((jwt) => ({
        type: 'del' as const,
        key: `1/${did}/${createHash('sha256').update(jwt).digest('base64url')}`,
      })),
    )
    this.#held.delete(did)
    return held
  }

  #hold(subject: string, jwt: string): void {
    let set = this.#held.get(subject)
    if (set === undefined) {
      set = new Set()
      this.#held.set(subject, set)
    }
    set.add(jwt)
  }
}
