/**
 * Audit: the append-only, hash-chained log of federation and authority decisions,
 * each row signed by the mesh key (SPEC §4); its HTTP routes (SPEC §3) are in src/http/routes/audit.ts.
 *
 * Inside: `audit-log` appends (one at a time, row + head + the caller's operations in
 * one batch) over `audit-row` (hash, signature) and `log-keys`; `audit-entry` checks
 * what is appended, `audit-pages` reads, `audit-verify` walks the whole log,
 * `rollback-watch` compares it with signed checkpoints (`checkpoint`, the local
 * `checkpoint-file`, and peers' through `checkpoint-gossip`). SPEC §11: `merkle` (RFC 6962
 * hashing, proofs and their verification, no I/O), `merkle-store` (the tree beside the
 * rows, grown in each append's batch), `tree-head` (signed tree heads, and the checks on
 * heads and proofs that refuse with a code).
 */
export {
  type AuditAppendOptions,
  AuditLog,
  type AuditLogInit,
  type PeerCheckpointRecord,
} from './audit-log.ts'
export { AUDIT_LIST_LIMITS, type AuditListQuery, type AuditPage } from './audit-pages.ts'
export {
  AUDIT_LIMITS,
  type AuditEntryInput,
  type AuditHead,
  type AuditRow,
  auditSignedText,
  GENESIS_HASH,
  rowHash,
  verifyRowSignature,
} from './audit-row.ts'
export {
  AUDIT_PROBLEM_KINDS,
  type AuditProblem,
  type AuditProblemKind,
  type AuditVerifyOptions,
  type AuditVerifyReport,
} from './audit-verify.ts'
export {
  type AuditCheckpoint,
  type CheckpointRelation,
  checkpointSchema,
  compareCheckpoints,
  isSignedCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from './checkpoint.ts'
export { CHECKPOINT_FILE, CheckpointFile } from './checkpoint-file.ts'
export {
  type CheckpointExchangeBody,
  CheckpointGossip,
  type CheckpointGossipInit,
} from './checkpoint-gossip.ts'
export {
  type EquivocationProof,
  keysOfMesh,
  verifyEquivocation,
} from './equivocation.ts'
export { type DefectionRecord, HeadBook, type HeadBookComponents, type TakeResult } from './head-book.ts'
// accountability across meshes (SPEC §11)
export {
  EMPTY_ROOT,
  type Hash,
  leafHash,
  MemoryTree,
  nodeHash,
  rootFromInclusion,
  verifyConsistency,
  verifyInclusion,
} from './merkle.ts'
export { rowLeaf } from './merkle-store.ts'
export { RefusalThrottle, type RefusalThrottleInit } from './refusal-throttle.ts'
export {
  REJECTED_LIMITS,
  type RejectedEntry,
  RejectedLog,
  type RejectedLogInit,
  rejectionFrom,
} from './rejected-log.ts'
export {
  type ConsistencyProof,
  checkConsistencyProof,
  checkInclusionProof,
  compareTreeHeads,
  type InclusionProof,
  isSignedTreeHead,
  parseTreeHead,
  type SignedTreeHead,
  signTreeHead,
} from './tree-head.ts'
