import type { MeshStore } from '../../store/index.ts'
import { RevokedSet } from './revoked-set.ts'

/** One revocation: the delegation's CID, who revoked it (the `ucan/revoke` invoker), why and when. */
export interface Revocation {
  cid: string
  by: string
  reason: string
  at: string
  /** The CID of the `ucan/revoke` invocation that did it. */
  invocation: string
}

/** Revoked delegations, by CID: `revocations` sublevel, `1/<cid>` → Revocation. */
export class RevocationStore extends RevokedSet<Revocation> {
  constructor(init: { store: MeshStore }) {
    super({ store: init.store, sublevel: 'revocations', prefix: '1', idOf: (r) => r.cid })
  }
}
