/**
 * Rooms: each room is an authenticated Yjs document (see README-layout.md) held by
 * the RoomManager (one loading promise per room, an update log with compaction in
 * LevelDB), checked by `validateUpdate` before any update from a peer or a client
 * touches it, and served over HTTP and the y-websocket endpoint. RoomSync shares
 * rooms with peer meshes and keeps them in sync over `/mesh/rooms/1.0.0`.
 */
export { type BackfillPlan, countEntries, type SplitOptions, splitDiff, splitUpdate } from './backfill.ts'
// agents in foreign rooms (SPEC §8, way 2): chains on one room, capability sessions
export {
  CAPABILITY_TOKEN_PREFIX,
  type CapabilitySession,
  type ChainRequest,
  ForeignAccess,
  type ForeignAccessInit,
  guestName,
  ROOM_ABILITIES,
  ROOM_READ_MAX_PAGE,
  type RoomAbility,
  type RoomInvokeResult,
} from './foreign-access.ts'
export { canWrite, effectiveMembers, isModerator, type SealedMember } from './membership.ts'
export {
  type MeshKey,
  MeshKeys,
  type MeshKeysInit,
  type OwnKeys,
  type PeerKeys,
  type SealKeys,
} from './mesh-keys.ts'
export { type Notification, type NotificationPage, parseMentions } from './notifications.ts'
export { type ClientApplyResult, type MessagePage, type MessageView, Room, type RoomOrigin } from './room.ts'
export {
  type ClientBinding,
  COMMITTED_CLIENT_MIN,
  committedClientId,
  contentId,
  type Entry,
  META_KEY,
  type MemberEntry,
  type MemberRole,
  type MessageEntry,
  makeSeal,
  pseudonymClientId,
  type ReactionEntry,
  type RedactionEntry,
  ROOM_LIMITS,
  ROOM_MAPS,
  type RoomMeta,
  SEALED_MAPS,
  type Seal,
  type SealedMapName,
  sealKey,
  sealPayload,
  sealSigner,
  type Tier,
  verifySeal,
} from './room-entries.ts'
export { RoomLog, type RoomLogInit } from './room-log.ts'
export {
  type LocalPrincipal,
  type MemberView,
  ROOM_VISIBILITIES,
  RoomManager,
  type RoomManagerInit,
  type RoomRecord,
  type RoomRejection,
  type RoomVisibility,
} from './room-manager.ts'
export {
  type AcceptedPeer,
  type InboundLimits,
  type PeerSyncStatus,
  RoomSync,
  type RoomSyncComponents,
  type RoomSyncInit,
  type RoomSyncStatus,
  type ShareView,
  type TransferProgress,
} from './room-sync.ts'
export {
  ShareBook,
  type ShareCheck,
  type ShareRecord,
  type SignedShare,
  shareResource,
  signShare,
  verifyShare,
} from './share.ts'
export {
  decodeFrame,
  encodeFrame,
  MalformedFrameError,
  MESH_ROOMS_PROTOCOL,
  MESH_ROOMS_PROTOCOL_DEFLATE,
  ROOM_MESSAGE,
  ROOM_SYNC_LIMITS,
  ROOM_SYNC_PROTOCOLS,
  type RoomFrame,
  SYNC_STEP,
} from './sync-protocol.ts'
// tasks across meshes (SPEC §13)
export { foldTasks, type TaskComment, type TaskPerson, type TaskView } from './task-board.ts'
export { isTaskEntry, TASK_LIMITS, TASK_STATUSES, type TaskEntry, type TaskStatus } from './task-entries.ts'
export { mayAssign } from './task-rules.ts'
export { TaskWriter, type TaskWriterComponents } from './task-writer.ts'
export {
  checkRules,
  type NewEntry,
  REJECT_REASONS,
  type RejectReason,
  refusalOf,
  type UpdateSender,
  type ValidatedUpdate,
  type ValidationResult,
  type ValidationTarget,
  validateUpdate,
} from './validate-update.ts'
export { type YjsTicket, YjsTickets, type YjsTicketsInit } from './yjs-tickets.ts'
export {
  createYjsEndpoint,
  YJS_MAX_FRAME_BYTES,
  type YjsEndpoint,
  type YjsWebsocketInit,
} from './yjs-websocket.ts'
