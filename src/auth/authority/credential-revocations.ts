import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'

/** One revoked credential: its id (sha-256 of the JWT, base64url), its subject, who and when. */
export interface CredentialRevocation {
  id: string
  subject: string
  by: string
  at: string
  reason: string
}

/**
 * Credentials this mesh issued and then revoked (a member removed), in the `credentials`
 * sublevel under `r/<id>`, mirrored in memory so the credential verifier asks
 * synchronously. Kept forever: a revoked credential may be presented until it expires.
 */
export class CredentialRevocations {
  readonly #sub: Sublevel<CredentialRevocation>
  readonly #revoked = new Map<string, CredentialRevocation>()

  constructor(init: { store: MeshStore }) {
    this.#sub = init.store.sublevel<CredentialRevocation>('credentials')
  }

  async open(): Promise<void> {
    for await (const value of this.#sub.values({ gte: 'r/', lt: 'r/~' })) this.#revoked.set(value.id, value)
  }

  isRevoked(id: string): boolean {
    return this.#revoked.has(id)
  }

  /** The operations that store `revocations`; call `applied` once they are written. */
  operations(revocations: CredentialRevocation[]): StoreOperation[] {
    return revocations.map(
      (r) => ({ type: 'put', sublevel: this.#sub, key: `r/${r.id}`, value: r }) as StoreOperation,
    )
  }

  applied(revocations: CredentialRevocation[]): void {
    for (const r of revocations) this.#revoked.set(r.id, r)
  }
}
