import type { MeshStore } from '../../store/index.ts'
import { RevokedSet } from './revoked-set.ts'

/** One revoked credential: its id (sha-256 of the JWT, base64url), its subject, who and when. */
export interface CredentialRevocation {
  id: string
  subject: string
  by: string
  at: string
  reason: string
}

/** Credentials this mesh issued and then revoked (a member removed): `credentials` sublevel, `r/<id>`. */
export class CredentialRevocations extends RevokedSet<CredentialRevocation> {
  constructor(init: { store: MeshStore }) {
    super({ store: init.store, sublevel: 'credentials', prefix: 'r', idOf: (r) => r.id })
  }
}
