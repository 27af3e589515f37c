import type { FromSchema, JSONSchema } from 'json-schema-to-ts'
import type { RouteName, Routes } from './routes.ts'
import type * as audit from './schemas/audit.ts'
// accountability across meshes (SPEC §11)
import type * as auditMerkle from './schemas/audit-merkle.ts'
import type * as capability from './schemas/capability-session.ts'
import type * as common from './schemas/common.ts'
import type * as connections from './schemas/connections.ts'
import type * as members from './schemas/members.ts'
import type * as policy from './schemas/policy.ts'
import type * as registry from './schemas/registry.ts'
import type * as rooms from './schemas/rooms.ts'
import type * as session from './schemas/session.ts'
import type * as trust from './schemas/trust.ts'

/** The shapes of the API, derived from its schemas (never declared twice). */

export type ErrorBody = FromSchema<typeof common.errorBodySchema>

export type Health = FromSchema<typeof session.healthSchema>
export type Manifest = FromSchema<typeof session.manifestSchema>
export type Challenge = FromSchema<typeof session.challengeSchema>
export type SessionToken = FromSchema<typeof session.sessionTokenSchema>
export type Me = FromSchema<typeof session.meSchema>
export type SessionRole = (typeof session.SESSION_ROLES)[number]

export type ConnectionView = FromSchema<typeof connections.connectionViewSchema>
export type ConnectionStatus = ConnectionView['status']
export type LinkError = NonNullable<ConnectionView['lastError']>
export type PeerView = FromSchema<typeof connections.peerViewSchema>
export type PeerState = PeerView['state']

export type FederationPolicy = FromSchema<typeof policy.policySchema>
export type PolicyMode = FederationPolicy['mode']
// PATCH of the policy (issue 13)
export type PolicyPatch = FromSchema<typeof policy.policyPatchSchema>
export type RejectedEntry = FromSchema<typeof policy.rejectedEntrySchema>
export type RejectedPage = FromSchema<typeof policy.rejectedPageSchema>

export type AuditRow = FromSchema<typeof audit.auditRowSchema>
export type AuditPage = FromSchema<typeof audit.auditPageSchema>
export type AuditReport = FromSchema<typeof audit.auditReportSchema>
export type AuditCheckpoint = FromSchema<typeof audit.checkpointSchema>

export type TrustView = FromSchema<typeof trust.trustRecordSchema>
export type TrustScope = TrustView['scope']
export type TrustList = FromSchema<typeof trust.trustListSchema>
export type RootDelegation = FromSchema<typeof trust.rootDelegationSchema>
export type KeysView = FromSchema<typeof trust.keysViewSchema>
export type KeyRotationResult = FromSchema<typeof trust.rotationResultSchema>
export type InvokeResult = FromSchema<typeof trust.invokeResultSchema>

export type RoomRecord = FromSchema<typeof rooms.roomRecordSchema>
export type RoomVisibility = (typeof rooms.ROOM_VISIBILITIES)[number]
export type RoomList = FromSchema<typeof rooms.roomListSchema>
export type ListedRoom = RoomList['rooms'][number]
export type RoomDetail = FromSchema<typeof rooms.roomDetailSchema>
export type ShareView = FromSchema<typeof rooms.shareViewSchema>
export type DmView = FromSchema<typeof rooms.dmViewSchema>
export type Member = FromSchema<typeof rooms.memberSchema>
export type MemberRole = Member['role']
export type Message = FromSchema<typeof rooms.messageSchema>
export type MessagePage = FromSchema<typeof rooms.messagePageSchema>
export type Notification = FromSchema<typeof rooms.notificationSchema>
export type NotificationPage = FromSchema<typeof rooms.notificationPageSchema>
export type RoomSyncStatus = FromSchema<typeof rooms.roomSyncSchema>
export type PeerSyncStatus = RoomSyncStatus['peers'][number]
export type Transfer = PeerSyncStatus['incoming']
export type YjsTicket = FromSchema<typeof rooms.yjsTicketSchema>

export type PublicMesh = FromSchema<typeof registry.publicMeshSchema>
export type MeshStatus = PublicMesh['status']
export type MeshPage = FromSchema<typeof registry.meshPageSchema>

// members: enrolment and removal (SPEC §8)
export type MemberView = FromSchema<typeof members.meshMemberSchema>
export type MemberList = FromSchema<typeof members.meshMemberListSchema>
export type MemberKind = MemberView['kind']
export type Membership = FromSchema<typeof members.membershipSchema>

type Part<R, K extends string> = R extends { readonly [P in K]: infer S extends JSONSchema }
  ? FromSchema<S>
  : undefined

/** What a call of route `N` takes: `params`, `query` and `body`, each only where the route has one. */
export type RouteInput<N extends RouteName> = Omit<
  {
    params: Part<Routes[N], 'params'>
    query?: Part<Routes[N], 'query'>
    body: Part<Routes[N], 'body'>
  },
  | (Routes[N] extends { params: object } ? never : 'params')
  | (Routes[N] extends { query: object } ? never : 'query')
  | (Routes[N] extends { body: object } ? never : 'body')
>

/** What route `N` answers on success (`undefined` for a 204). */
export type RouteOutput<N extends RouteName> = Routes[N] extends { response: infer S extends JSONSchema }
  ? FromSchema<S>
  : undefined

// Agents in foreign rooms (SPEC §8, way 2)
export type CapabilitySessionToken = FromSchema<typeof capability.capabilitySessionSchema>
export type RoomInvokeResult = FromSchema<typeof capability.roomInvokeResultSchema>
// Outbound invocation over libp2p
export type OutboundInvokeResult = FromSchema<
  typeof import('./schemas/outbound.ts').outboundInvokeResultSchema
>
// Revocation people can use (SPEC §9)
export type DelegationList = FromSchema<typeof import('./schemas/revocation.ts').delegationListSchema>
export type IssuedDelegationView = DelegationList['delegations'][number]
export type RevocationView = DelegationList['revocations'][number]
export type RevokeResultView = FromSchema<typeof import('./schemas/revocation.ts').revokeResultSchema>

// accountability across meshes (SPEC §11): signed tree heads and Merkle proofs
export type TreeHead = FromSchema<typeof auditMerkle.treeHeadSchema>
export type InclusionProof = FromSchema<typeof auditMerkle.inclusionProofSchema>
export type ConsistencyProof = FromSchema<typeof auditMerkle.consistencyProofSchema>
export type EquivocationProofView = FromSchema<typeof auditMerkle.equivocationProofSchema>
export type DefectionView = FromSchema<typeof auditMerkle.defectionSchema>
export type DefectionList = FromSchema<typeof auditMerkle.defectionListSchema>
// Room lifecycle and consent (SPEC §9)
export type InvitationList = FromSchema<typeof import('./schemas/room-lifecycle.ts').invitationListSchema>
export type Invitation = InvitationList['invitations'][number]
// tasks across meshes (SPEC §13)
export type TaskView = FromSchema<typeof import('./schemas/tasks.ts').taskSchema>
export type TaskList = FromSchema<typeof import('./schemas/tasks.ts').taskListSchema>
// the model proxy (SPEC §13)
export type UsageList = FromSchema<typeof import('./schemas/model.ts').usageListSchema>
export type UsageView = UsageList['usage'][number]
export type ChatCompletionRequest = FromSchema<typeof import('./schemas/model.ts').chatCompletionBodySchema>
// reachable by URL (SPEC §10)
export type MeshUrlView = FromSchema<typeof import('./schemas/mesh-profile.ts').meshUrlViewSchema>
export type MeshProfile = FromSchema<typeof import('./schemas/mesh-profile.ts').meshProfileSchema>
// coordination fees (SPEC §10)
export type ReceiptView = FromSchema<typeof import('./schemas/ledger.ts').receiptSchema>
export type LedgerView = FromSchema<typeof import('./schemas/ledger.ts').ledgerSchema>
export type LedgerBeneficiaryView = LedgerView['beneficiaries'][number]
export type LedgerRelayView = LedgerView['relays'][number]

// files in rooms (issue 18)
export type FileAttachment = FromSchema<typeof import('./schemas/files.ts').attachmentSchema>
export type FileCache = FromSchema<typeof import('./schemas/files.ts').fileCacheSchema>
// relay ledger forgive (SPEC §10)
export type LedgerForgiveBody = FromSchema<
  typeof import('./schemas/ledger-forgive.ts').ledgerForgiveBodySchema
>
export type LedgerForgiven = FromSchema<typeof import('./schemas/ledger-forgive.ts').ledgerForgivenSchema>
