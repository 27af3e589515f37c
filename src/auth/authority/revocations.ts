import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'

/** One revocation: the delegation's CID, who revoked it (the `ucan/revoke` invoker), why and when. */
export interface Revocation {
  cid: string
  by: string
  reason: string
  at: string
  /** The CID of the `ucan/revoke` invocation that did it. */
  invocation: string
}

/**
 * Revoked delegations, by CID, in the `revocations` sublevel (`1/<cid>` → Revocation),
 * mirrored in memory so the chain verifier asks synchronously. Kept forever: a
 * revoked delegation may be presented until it expires, and it costs one small row.
 */
export class RevocationStore {
  readonly #sub: Sublevel<Revocation>
  readonly #revoked = new Map<string, Revocation>()
  #opened = false

  constructor(init: { store: MeshStore }) {
    this.#sub = init.store.sublevel<Revocation>('revocations')
  }

  async open(): Promise<void> {
    if (this.#opened) return
    for await (const value of this.#sub.values({ gte: '1/', lt: '1/~' })) this.#revoked.set(value.cid, value)
    this.#opened = true
  }

  isRevoked(cid: string): boolean {
    return this.#revoked.has(cid)
  }

  get(cid: string): Revocation | undefined {
    return this.#revoked.get(cid)
  }

  list(): Revocation[] {
    return [...this.#revoked.values()]
  }

  /** The operations that store `revocation`; call `applied` once they are written. */
  operations(revocation: Revocation): StoreOperation[] {
    return [
      { type: 'put', sublevel: this.#sub, key: `1/${revocation.cid}`, value: revocation },
    ] as StoreOperation[]
  }

  applied(revocation: Revocation): void {
    this.#revoked.set(revocation.cid, revocation)
  }
}
