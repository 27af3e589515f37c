/**
 * Audit: the append-only, hash-chained log of federation and authority decisions,
 * each row signed by the mesh key (SPEC §4); its HTTP routes (SPEC §3) are in src/http/routes/audit.ts.
 */
export {
  AUDIT_LIST_LIMITS,
  AUDIT_PROBLEM_KINDS,
  type AuditAppendOptions,
  type AuditListQuery,
  AuditLog,
  type AuditLogInit,
  type AuditPage,
  type AuditProblem,
  type AuditProblemKind,
  type AuditVerifyOptions,
  type AuditVerifyReport,
  type PeerCheckpointRecord,
} from './audit-log.ts'
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
