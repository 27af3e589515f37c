import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'
import type { DelegationFacts } from './revocation-notice.ts'

/** A delegation one of this mesh's principals issued, as recorded when it was issued (or revoked). */
export interface IssuedDelegation extends DelegationFacts {
  /** The encoded token: what a revocation sends to peers, so they can check who issued it. */
  token: string
  /** ISO time it was recorded here. */
  recordedAt: string
  /** Who recorded it (the session principal). */
  recordedBy: string
}

/**
 * Delegations issued by this mesh's principals (SPEC §9: what this mesh's humans
 * issued), in the `revocations` sublevel under `d/<cid>`, mirrored in memory.
 * Recorded by `mesh delegate` and the console when they issue one, and by a
 * revocation that brings its token.
 */
export class DelegationBook {
  readonly #sub: Sublevel<IssuedDelegation>
  readonly #all = new Map<string, IssuedDelegation>()
  #opened = false

  constructor(init: { store: MeshStore }) {
    this.#sub = init.store.sublevel<IssuedDelegation>('revocations')
  }

  async open(): Promise<void> {
    if (this.#opened) return
    for await (const value of this.#sub.values({ gte: 'd/', lt: 'd/~' })) this.#all.set(value.cid, value)
    this.#opened = true
  }

  get(cid: string): IssuedDelegation | undefined {
    return this.#all.get(cid)
  }

  /** Newest first. */
  list(): IssuedDelegation[] {
    return [...this.#all.values()].sort((a, b) => b.recordedAt.localeCompare(a.recordedAt))
  }

  operations(record: IssuedDelegation): StoreOperation[] {
    return [{ type: 'put', sublevel: this.#sub, key: `d/${record.cid}`, value: record } as StoreOperation]
  }

  applied(record: IssuedDelegation): void {
    this.#all.set(record.cid, record)
  }
}
