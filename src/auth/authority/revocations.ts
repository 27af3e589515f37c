import type { MeshStore } from '../../store/index.ts'
import type { RevocationNotice } from './revocation-notice.ts'
import { RevokedSet } from './revoked-set.ts'

/** One revocation: the delegation's CID, who revoked it (the `ucan/revoke` invoker), why and when. */
export interface Revocation {
  cid: string
  by: string
  reason: string
  at: string
  /** The CID of the `ucan/revoke` invocation that did it (a peer's revocation: its notice's signature). */
  invocation: string
  // revocation that travels (SPEC §9)
  /** The mesh that revoked it: this mesh's did, or the peer's identity; absent in older rows (this mesh). */
  mesh?: string
  /** The signed notice: what this mesh sent to its peers, or what a peer sent. */
  notice?: RevocationNotice
}

/** Revoked delegations, by CID: `revocations` sublevel, `1/<cid>` → Revocation. */
export class RevocationStore extends RevokedSet<Revocation> {
  constructor(init: { store: MeshStore }) {
    super({ store: init.store, sublevel: 'revocations', prefix: '1', idOf: (r) => r.cid })
  }
}
