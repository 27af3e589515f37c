/**
 * Authority: who may do what on this mesh, from three independent proofs (SPEC §4).
 *
 * - DID (who you are): did:key (Ed25519) and did:web, resolved by `DidResolver`.
 * - UCAN chain (what you may do): ucanto delegations/invocations of `CAPABILITIES`,
 *   verified by `ChainVerifier` with node:crypto Ed25519 and a CID-keyed cache.
 * - Verifiable credentials (who vouches for you): did-jwt-vc JWTs — a home mesh's
 *   membership credential (human|agent, role, tier, mesh) and vouching credentials.
 *
 * `Authority` ties them to this mesh's store, audit log and tiers (`TrustStore`):
 * `verifyAuthority(request, context)` → `{ok}` | `{error: {code, message, proof, details}}`.
 *
 * Inside: `invocation-verifier` makes one decision from `chain` (the path search, over
 * `chain-link` and `claim`), `presented-credentials` and `mesh-rules` (tiers, a human
 * in the chain); `charges` says whom a refusal may be charged to; `root-delegation`,
 * `held-credentials`, `revocations` (with `revoke`) and `replay-guard` are its state.
 */
export { Authority, type AuthorityInit } from './authority.ts'
export {
  type Ability,
  agentResourceOf,
  CAPABILITIES,
  type CapabilityInfo,
  MAX_DELEGATING_TIER,
  parserOf, // issue 15: parsers are built on first use
  resourceOwner,
  roomResourceOf,
  TIERS,
  type Tier,
  withinResource,
} from './capabilities.ts'
export { type ChainPath, ChainVerifier, type ChainVerifierInit } from './chain.ts'
export type { ChainLink } from './chain-link.ts'
export type { ExpectedCapability } from './claim.ts'
// members: the membership verifier and credential revocations (SPEC §8)
export { type CredentialRevocation, CredentialRevocations } from './credential-revocations.ts'
export {
  CredentialVerifier,
  issueMembershipCredential,
  issuePresentation,
  issueVouchCredential,
  jwtIssuerOf,
  MEMBERSHIP_CREDENTIAL,
  type MembershipClaims,
  type VerifiedCredential,
  type VerifiedPresentation,
  VOUCH_CREDENTIAL,
  type VouchClaims,
} from './credentials.ts'
// revocation that travels (SPEC §9)
export { DelegationBook, type IssuedDelegation } from './delegation-book.ts'
export { DidResolver, type DidResolverInit, didKeyDocument, didWebDocument, type ResolvedDid } from './did.ts'
export type { AuthorityFailure, ProofName } from './failure.ts'
export { type Membership, verifyMembership } from './membership.ts'
export {
  jwtIssuer,
  jwtSigner,
  NodeEd25519Signer,
  NodeEd25519Verifier,
  principalParser,
  ucantoSigner,
  ucantoVerifier,
} from './principal.ts'
export {
  type DelegationFacts,
  delegationFacts,
  type RevocationNotice,
  revocationNoticeSchema,
  signRevocationNotice,
  verifyRevocationNotice,
} from './revocation-notice.ts'
export { type Revocation, RevocationStore } from './revocations.ts'
export type { CompleteRevocation } from './revoke.ts'
export {
  type CapabilityInput,
  decodeToken,
  encodeToken,
  type IssueOptions,
  issueDelegation,
  issueInvocation,
  TOKEN_LIMITS,
  viewOf,
} from './token.ts'
export { type Interaction, type TrustRecord, type TrustScope, TrustStore } from './trust.ts'
export {
  type AuthorityContext,
  type AuthorityError,
  type AuthorityOk,
  type AuthorityRequest,
  type AuthorityVerdict,
  toMeshError,
} from './verdict.ts'
