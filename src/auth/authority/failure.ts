import type { MeshErrorCode } from '../../errors.ts'

/** The three independent proofs of an authority decision (SPEC §4). */
export type ProofName = 'did' | 'ucan' | 'vc'

/** Why a proof failed: the code the caller reports, and which of the three proofs it was. */
export interface AuthorityFailure {
  code: MeshErrorCode
  message: string
  proof: ProofName
  details: Record<string, unknown>
}

/** A failure of the UCAN proof. */
export function ucanFailure(
  code: MeshErrorCode,
  message: string,
  details: Record<string, unknown>,
): AuthorityFailure {
  return { code, message, proof: 'ucan', details }
}
