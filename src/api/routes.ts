import { type RouteSpec, route } from './route-spec.ts'
import { serviceRoutes } from './routes-services.ts'
import * as audit from './schemas/audit.ts'
// accountability across meshes (SPEC §11)
import * as auditMerkle from './schemas/audit-merkle.ts'
// agents in foreign rooms (SPEC §8, way 2)
import * as capability from './schemas/capability-session.ts'
import * as connections from './schemas/connections.ts'
import * as members from './schemas/members.ts'
// outbound invocation over libp2p
import * as outbound from './schemas/outbound.ts'
import * as policy from './schemas/policy.ts'
import * as registry from './schemas/registry.ts'
// revocation people can use (SPEC §9)
import * as revocation from './schemas/revocation.ts'
// room lifecycle and consent (SPEC §9)
import * as lifecycle from './schemas/room-lifecycle.ts'
import * as roomMembers from './schemas/room-members.ts'
import * as rooms from './schemas/rooms.ts'
import * as session from './schemas/session.ts'
import * as trust from './schemas/trust.ts'

/**
 * Every route of the node's HTTP API and the registry's, by name: method, path (with
 * `:param`s), whether it needs a session, and the schemas of its params, query, body
 * and answer. The server registers its routes with these schemas; the typed client
 * derives each call's input and output from them.
 */
export type { RouteSpec } from './route-spec.ts'

export const routes = {
  // Identity and session
  health: route({ method: 'GET', path: '/api/health', session: false, response: session.healthSchema }),
  manifest: route({
    method: 'GET',
    path: '/.well-known/mesh-manifest.json',
    session: false,
    response: session.manifestSchema,
  }),
  challenge: route({
    method: 'GET',
    path: '/api/session/challenge',
    session: false,
    response: session.challengeSchema,
  }),
  openSession: route({
    method: 'POST',
    path: '/api/session',
    session: false,
    body: session.sessionBodySchema,
    response: session.sessionTokenSchema,
  }),
  closeSession: route({ method: 'DELETE', path: '/api/session', session: true, status: 204 }),
  me: route({ method: 'GET', path: '/api/me', session: true, response: session.meSchema }),

  // Connections and peers
  listConnections: route({
    method: 'GET',
    path: '/api/connections',
    session: true,
    response: connections.connectionListSchema,
  }),
  getConnection: route({
    method: 'GET',
    path: '/api/connections/:id',
    session: true,
    params: connections.connectionIdParams,
    response: connections.connectionViewSchema,
  }),
  connect: route({
    method: 'POST',
    path: '/api/connections',
    session: true,
    status: 202,
    body: connections.connectBodySchema,
    response: connections.connectionAcceptedSchema,
  }),
  acceptConnection: route({
    method: 'POST',
    path: '/api/connections/:id/accept',
    session: true,
    status: 202,
    params: connections.connectionIdParams,
    body: connections.actBodySchema,
    response: connections.connectionAcceptedSchema,
  }),
  declineConnection: route({
    method: 'POST',
    path: '/api/connections/:id/decline',
    session: true,
    status: 202,
    params: connections.connectionIdParams,
    body: connections.actBodySchema,
    response: connections.connectionAcceptedSchema,
  }),
  disconnectConnection: route({
    method: 'POST',
    path: '/api/connections/:id/disconnect',
    session: true,
    status: 202,
    params: connections.connectionIdParams,
    body: connections.actBodySchema,
    response: connections.connectionAcceptedSchema,
  }),
  listPeers: route({
    method: 'GET',
    path: '/api/federation/peers',
    session: true,
    response: connections.peerListSchema,
  }),
  refreshPeer: route({
    method: 'POST',
    path: '/api/federation/peers/:did/refresh',
    session: true,
    params: connections.peerParamsSchema,
    body: connections.peerRefreshBodySchema,
    response: connections.peerViewSchema,
  }),

  // Policy and refusals
  getPolicy: route({
    method: 'GET',
    path: '/api/federation/policy',
    session: true,
    response: policy.policySchema,
  }),
  putPolicy: route({
    method: 'PUT',
    path: '/api/federation/policy',
    session: true,
    body: policy.policyPutSchema,
    response: policy.policySchema,
  }),
  listRejected: route({
    method: 'GET',
    path: '/api/federation/rejected',
    session: true,
    query: policy.rejectedQuerySchema,
    response: policy.rejectedPageSchema,
  }),

  // Audit
  listAudit: route({
    method: 'GET',
    path: '/api/audit',
    session: true,
    query: audit.auditQuerySchema,
    response: audit.auditPageSchema,
  }),
  verifyAudit: route({
    method: 'GET',
    path: '/api/audit/verify',
    session: true,
    query: audit.verifyQuerySchema,
    response: audit.auditReportSchema,
  }),
  verifyAuditAgainst: route({
    method: 'POST',
    path: '/api/audit/verify',
    session: true,
    body: audit.verifyBodySchema,
    response: audit.auditReportSchema,
  }),
  auditCheckpoint: route({
    method: 'GET',
    path: '/api/audit/checkpoint',
    session: true,
    response: audit.checkpointSchema,
  }),

  // Trust, authority, keys, invocation
  listTrust: route({ method: 'GET', path: '/api/trust', session: true, response: trust.trustListSchema }),
  getTrust: route({
    method: 'GET',
    path: '/api/trust/:did',
    session: true,
    params: trust.trustParamsSchema,
    query: trust.trustQuerySchema,
    response: trust.trustRecordSchema,
  }),
  putTrust: route({
    method: 'PUT',
    path: '/api/trust/:did',
    session: true,
    params: trust.trustParamsSchema,
    body: trust.trustBodySchema,
    response: trust.trustRecordSchema,
  }),
  rootDelegation: route({
    method: 'GET',
    path: '/api/auth/root-delegation',
    session: true,
    response: trust.rootDelegationSchema,
  }),
  keys: route({ method: 'GET', path: '/api/keys', session: true, response: trust.keysViewSchema }),
  rotateKey: route({
    method: 'POST',
    path: '/api/keys/rotate',
    session: true,
    body: trust.rotateBodySchema,
    response: trust.rotationResultSchema,
  }),
  invoke: route({
    method: 'POST',
    path: '/api/invoke',
    session: false,
    body: trust.invokeBodySchema,
    // an agent/invoke's answer, or (agents in foreign rooms) a room/post's or room/read's
    response: { oneOf: [trust.invokeResultSchema, capability.roomInvokeResultSchema] } as const,
  }),

  // Rooms
  createRoom: route({
    method: 'POST',
    path: '/api/rooms',
    session: true,
    status: 201,
    body: rooms.createRoomBodySchema,
    response: rooms.roomRecordSchema,
  }),
  listRooms: route({ method: 'GET', path: '/api/rooms', session: true, response: rooms.roomListSchema }),
  getRoom: route({
    method: 'GET',
    path: '/api/rooms/:id',
    session: true,
    params: rooms.roomParamsSchema,
    response: rooms.roomDetailSchema,
  }),
  shareRoom: route({
    method: 'POST',
    path: '/api/rooms/:id/share',
    session: true,
    status: 201,
    params: rooms.roomParamsSchema,
    body: rooms.shareBodySchema,
    response: rooms.shareViewSchema,
  }),
  roomSync: route({
    method: 'GET',
    path: '/api/rooms/:id/sync',
    session: true,
    params: rooms.roomParamsSchema,
    response: rooms.roomSyncSchema,
  }),
  openFederatedDm: route({
    method: 'POST',
    path: '/api/me/federated-dms',
    session: true,
    status: 201,
    body: rooms.federatedDmBodySchema,
    response: rooms.dmViewSchema,
  }),
  joinRoom: route({
    method: 'POST',
    path: '/api/rooms/:id/join',
    session: true,
    params: rooms.roomParamsSchema,
    response: rooms.memberSchema,
  }),
  inviteToRoom: route({
    method: 'POST',
    path: '/api/rooms/:id/invite',
    session: true,
    status: 201,
    params: rooms.roomParamsSchema,
    body: rooms.inviteBodySchema,
    response: rooms.memberSchema,
  }),
  roomMembers: route({
    method: 'GET',
    path: '/api/rooms/:id/members',
    session: true,
    params: rooms.roomParamsSchema,
    response: rooms.memberListSchema,
  }),
  listMessages: route({
    method: 'GET',
    path: '/api/rooms/:id/messages',
    session: true,
    params: rooms.roomParamsSchema,
    query: rooms.messagesQuerySchema,
    response: rooms.messagePageSchema,
  }),
  postMessage: route({
    method: 'POST',
    path: '/api/rooms/:id/messages',
    session: true,
    status: 201,
    params: rooms.roomParamsSchema,
    body: rooms.postMessageBodySchema,
    response: rooms.createdSchema,
  }),
  react: route({
    method: 'POST',
    path: '/api/rooms/:id/messages/:mid/reactions',
    session: true,
    status: 201,
    params: rooms.messageParamsSchema,
    body: rooms.reactionBodySchema,
    response: rooms.createdSchema,
  }),
  redact: route({
    method: 'POST',
    path: '/api/rooms/:id/messages/:mid/redact',
    session: true,
    status: 201,
    params: rooms.messageParamsSchema,
    body: rooms.redactBodySchema,
    response: rooms.createdSchema,
  }),
  notifications: route({
    method: 'GET',
    path: '/api/me/notifications',
    session: true,
    query: rooms.notificationsQuerySchema,
    response: rooms.notificationPageSchema,
  }),
  yjsTicket: route({
    method: 'POST',
    path: '/api/rooms/:id/yjs-ticket',
    session: true,
    params: rooms.roomParamsSchema,
    response: rooms.yjsTicketSchema,
  }),

  // Discovery and registry
  publicMeshes: route({
    method: 'GET',
    path: '/api/meshes/public',
    session: false,
    query: registry.meshListQuerySchema,
    response: registry.meshPageSchema,
  }),
  heartbeat: route({
    method: 'POST',
    path: '/api/meshes/heartbeat',
    session: false,
    body: registry.heartbeatBodySchema,
    response: registry.heartbeatAcceptedSchema,
  }),

  // members: enrolment and removal (SPEC §8)
  listMembers: route({
    method: 'GET',
    path: '/api/members',
    session: true,
    response: members.meshMemberListSchema,
  }),
  enrolMember: route({
    method: 'POST',
    path: '/api/members',
    session: true,
    status: 201,
    body: members.enrolBodySchema,
    response: members.meshMemberSchema,
  }),
  memberCredential: route({
    method: 'GET',
    path: '/api/members/:did/credential',
    session: true,
    params: members.meshMemberParams,
    response: members.memberCredentialSchema,
  }),
  verifyMemberCredential: route({
    method: 'POST',
    path: '/api/members/credential/verify',
    session: true,
    body: members.verifyCredentialBodySchema,
    response: members.membershipSchema,
  }),
  removeMember: route({
    method: 'DELETE',
    path: '/api/members/:did',
    session: true,
    status: 204,
    params: members.meshMemberParams,
    body: members.removeBodySchema,
  }),

  // Members everywhere: room roles
  setRoomRole: route({
    method: 'PUT',
    path: '/api/rooms/:id/members/:did',
    session: true,
    params: roomMembers.roomMemberParamsSchema,
    body: roomMembers.setRoomRoleBodySchema,
    response: rooms.memberSchema,
  }),

  // Agents in foreign rooms (SPEC §8, way 2): a capability session for one room
  capabilitySession: route({
    method: 'POST',
    path: '/api/session/ucan',
    session: false,
    body: capability.capabilitySessionBodySchema,
    response: capability.capabilitySessionSchema,
  }),

  // Outbound invocation over libp2p (/mesh/invoke/1.0.0)
  outboundInvoke: route({
    method: 'POST',
    path: '/api/outbound/invoke',
    session: true,
    body: outbound.outboundInvokeBodySchema,
    response: outbound.outboundInvokeResultSchema,
  }),

  // Revocation people can use (SPEC §9)
  listDelegations: route({
    method: 'GET',
    path: '/api/auth/delegations',
    session: true,
    response: revocation.delegationListSchema,
  }),
  recordDelegation: route({
    method: 'POST',
    path: '/api/auth/delegations',
    session: true,
    status: 201,
    body: revocation.recordDelegationBodySchema,
    response: revocation.issuedDelegationSchema,
  }),
  revoke: route({
    method: 'POST',
    path: '/api/auth/revoke',
    session: true,
    body: revocation.revokeBodySchema,
    response: revocation.revokeResultSchema,
  }),

  // PATCH of the policy (issue 13)
  patchPolicy: route({
    method: 'PATCH',
    path: '/api/federation/policy',
    session: true,
    body: policy.policyPatchSchema,
    response: policy.policySchema,
  }),

  // Paused links (issue 13)
  pauseConnection: route({
    method: 'POST',
    path: '/api/connections/:id/pause',
    session: true,
    status: 202,
    params: connections.connectionIdParams,
    body: connections.actBodySchema,
    response: connections.connectionAcceptedSchema,
  }),
  resumeConnection: route({
    method: 'POST',
    path: '/api/connections/:id/resume',
    session: true,
    status: 202,
    params: connections.connectionIdParams,
    body: connections.actBodySchema,
    response: connections.connectionAcceptedSchema,
  }),

  // Accountability across meshes (SPEC §11): signed tree heads and Merkle proofs
  auditTreeHead: route({
    method: 'GET',
    path: '/api/audit/sth',
    session: true,
    response: auditMerkle.treeHeadSchema,
  }),
  auditInclusionProof: route({
    method: 'GET',
    path: '/api/audit/proof/inclusion',
    session: true,
    query: auditMerkle.inclusionQuerySchema,
    response: auditMerkle.inclusionProofSchema,
  }),
  auditConsistencyProof: route({
    method: 'GET',
    path: '/api/audit/proof/consistency',
    session: true,
    query: auditMerkle.consistencyQuerySchema,
    response: auditMerkle.consistencyProofSchema,
  }),
  listDefections: route({
    method: 'GET',
    path: '/api/federation/defections',
    session: true,
    response: auditMerkle.defectionListSchema,
  }),
  getDefection: route({
    method: 'GET',
    path: '/api/federation/defections/:did',
    session: true,
    params: auditMerkle.defectionParamsSchema,
    response: auditMerkle.defectionSchema,
  }),

  // Room lifecycle and consent (SPEC §9)
  listInvitations: route({
    method: 'GET',
    path: '/api/rooms/invitations',
    session: true,
    response: lifecycle.invitationListSchema,
  }),
  acceptInvitation: route({
    method: 'POST',
    path: '/api/rooms/invitations/:id/accept',
    session: true,
    params: lifecycle.invitationParamsSchema,
    body: lifecycle.lifecycleActBodySchema,
    response: lifecycle.invitationSchema,
  }),
  declineInvitation: route({
    method: 'POST',
    path: '/api/rooms/invitations/:id/decline',
    session: true,
    params: lifecycle.invitationParamsSchema,
    body: lifecycle.lifecycleActBodySchema,
    response: lifecycle.invitationSchema,
  }),
  unshareRoom: route({
    method: 'POST',
    path: '/api/rooms/:id/unshare',
    session: true,
    params: rooms.roomParamsSchema,
    body: lifecycle.unshareBodySchema,
    response: rooms.shareViewSchema,
  }),
  removeRoomMember: route({
    method: 'DELETE',
    path: '/api/rooms/:id/members/:did',
    session: true,
    status: 204,
    params: roomMembers.roomMemberParamsSchema,
    body: lifecycle.lifecycleActBodySchema,
  }),
  leaveRoom: route({
    method: 'POST',
    path: '/api/rooms/:id/leave',
    session: true,
    params: rooms.roomParamsSchema,
    body: lifecycle.lifecycleActBodySchema,
    response: lifecycle.leftSchema,
  }),
  // SPEC §10, §13: tasks, the model proxy, files, connecting by URL, the relay ledger
  ...serviceRoutes,
} as const satisfies Record<string, RouteSpec>

export type Routes = typeof routes
export type RouteName = keyof Routes
