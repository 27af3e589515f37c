import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { AgentService, Invocations } from '../agents/index.ts'
import type { AuditLog } from '../audit/index.ts'
import type { MemberService, SessionService } from '../auth/index.ts'
import type { ConnectionService, PolicyChange, PolicyService, RejectedLog } from '../connections/index.ts'
import type { KeyRotationResult, KeysView } from '../keys/index.ts'
import type { Logger } from '../log.ts'
import type { MeshManifest } from '../manifest/index.ts'
// the model proxy (SPEC §13)
import type { ModelProxy } from '../model/index.ts'
import type { PublicMeshSource, RegistryService } from '../registry/index.ts'
import type { ForeignAccess, RoomManager, RoomSync } from '../rooms/index.ts'
import { auditRoutes } from './routes/audit.ts'
// accountability across meshes (SPEC §11)
import { type AuditMerkleRoutesInit, auditMerkleRoutes } from './routes/audit-merkle.ts'
import { type AuthorityRoutesInit, authorityRoutes } from './routes/authority.ts'
// agents in foreign rooms (SPEC §8, way 2)
import { capabilitySessionRoutes, registerCapabilityGuard } from './routes/capability-session.ts'
import { connectionRoutes } from './routes/connections.ts'
import { registerConsole } from './routes/console.ts'
import { coreRoutes, type HealthInfo } from './routes/core.ts'
// phase-1 HTTP federation (SPEC §12)
import { type FederationRoutesInit, federationRoutes } from './routes/federation.ts'
import { type FileRoutesInit, fileRoutes } from './routes/files.ts' // files in rooms (issue 18)
import { invokeRoutes } from './routes/invoke.ts'
import { keyRoutes } from './routes/keys.ts'
// coordination fees (SPEC §10)
import { type LedgerRoutesInit, ledgerRoutes } from './routes/ledger.ts'
import { type LedgerForgiveRoutesInit, ledgerForgiveRoutes } from './routes/ledger-forgive.ts' // relay ledger forgive (SPEC §10)
import { memberRoutes } from './routes/members.ts'
// the model proxy (SPEC §13)
import { modelRoutes } from './routes/model.ts'
// outbound invocation over libp2p
import { type OutboundRoutesInit, outboundRoutes } from './routes/outbound.ts'
import { policyRoutes } from './routes/policy.ts'
import { meshListRoutes, type RegistryRoutesInit, registryRoutes } from './routes/registry.ts'
import { rejectedRoutes } from './routes/rejected.ts'
// revocation people can use (SPEC §9)
import { type RevocationRoutesInit, revocationRoutes } from './routes/revocation.ts'
// Members everywhere: room roles
// room lifecycle and consent (SPEC §9)
import { roomLifecycleRoutes } from './routes/room-lifecycle.ts'
import { roomMemberRoutes } from './routes/room-members.ts'
import { roomRoutes } from './routes/rooms.ts'
import { registerSessionRoutes } from './routes/session.ts'
// tasks across meshes (SPEC §13)
import { taskRoutes } from './routes/tasks.ts'
import { yjsRoutes } from './routes/yjs.ts'

/** What a node's routes serve: each area gets only its own part. */
export interface NodeRoutesInit {
  sessions: SessionService
  health: () => HealthInfo
  manifest: () => MeshManifest
  metrics: Registry
  connections: ConnectionService
  policy: PolicyService
  /** After a policy change is stored, before the reply (see PolicyRoutesInit.onChange). */
  onPolicyChange?: (change: PolicyChange) => void | Promise<void>
  rejected: RejectedLog
  audit: AuditLog
  keys: () => KeysView
  /** Verifies the architect's act `mesh/rotate-key` (with = the current did) and rotates. */
  rotateKey: (input: { ucan: string; actor: string }) => Promise<KeyRotationResult>
  authority: AuthorityRoutesInit['authority']
  agents: AgentService
  rooms: RoomManager
  roomSync?: RoomSync
  /** The public list: what this node discovered. */
  meshes: PublicMeshSource
  /** When the node also serves a registry. */
  registry?: RegistryService
  registryPerSource?: RegistryRoutesInit['perSource']
  logger: Logger
  // members: enrolment and removal (SPEC §8)
  members?: MemberService
  /** Agents in foreign rooms: room/read, room/post under a chain, and capability sessions. */
  foreignAccess?: ForeignAccess
  // Outbound invocation over libp2p
  outbound?: OutboundRoutesInit['send']
  // one invocation dispatcher (POST /api/invoke and /mesh/invoke/1.0.0)
  invocations: Pick<Invocations, 'invoke'>
  // revocation people can use (SPEC §9)
  revocations?: RevocationRoutesInit['revocations']
  // names for identities (issue 14)
  names?: AuthorityRoutesInit['names']
  // accountability across meshes (SPEC §11): the defections found or shown
  heads?: AuditMerkleRoutesInit['heads']
  // phase-1 HTTP federation (SPEC §12): POST /connections/* and /federation/send
  httpFederation?: FederationRoutesInit['federation']
  // the model proxy (SPEC §13): /v1/chat/completions, /v1/models, /api/usage
  model?: ModelProxy
  modelMaxBodyBytes?: number
  // coordination fees (SPEC §10)
  ledger?: LedgerRoutesInit['ledger']
  // files in rooms (issue 18)
  files?: FileRoutesInit['files']
  // relay ledger forgive (SPEC §10)
  forgiveLedger?: LedgerForgiveRoutesInit['forgive']
}

/**
 * Every route a node serves (SPEC §3), one plugin per area. The session guard is set on
 * the root first (registerSessionRoutes), so every area's plugin inherits
 * `app.requireSession`; the console comes last (its fallback must not shadow an unknown
 * API path's JSON 404).
 */
export async function registerNodeRoutes(app: FastifyInstance, init: NodeRoutesInit): Promise<void> {
  const { sessions } = init
  await app.register(coreRoutes, { health: init.health, manifest: init.manifest, metrics: init.metrics })
  registerSessionRoutes(app, sessions)
  // agents in foreign rooms: the capability guard runs before every route's session guard
  if (init.foreignAccess !== undefined) {
    registerCapabilityGuard(app, init.foreignAccess)
    await app.register(capabilitySessionRoutes, { access: init.foreignAccess })
  }
  await app.register(connectionRoutes, { connections: init.connections })
  await app.register(policyRoutes, {
    policy: init.policy,
    ...(init.onPolicyChange !== undefined ? { onChange: init.onPolicyChange } : {}),
  })
  await app.register(rejectedRoutes, { rejected: init.rejected })
  await app.register(auditRoutes, {
    audit: init.audit,
    ...(init.names !== undefined ? { names: init.names } : {}),
  })
  await app.register(keyRoutes, { keys: init.keys, rotate: init.rotateKey })
  await app.register(authorityRoutes, {
    authority: init.authority,
    ...(init.names !== undefined ? { names: init.names } : {}),
  })
  await app.register(invokeRoutes, { invocations: init.invocations })
  await app.register(roomRoutes, {
    rooms: init.rooms,
    sync: init.roomSync,
    ...(init.foreignAccess !== undefined ? { foreign: init.foreignAccess } : {}),
    ...(init.files !== undefined ? { attachments: init.files } : {}), // files in rooms (issue 18)
  })
  // Members everywhere: room roles
  await app.register(roomMemberRoutes, {
    rooms: init.rooms,
    // room lifecycle (SPEC §9): role changes are acts (room/role)
    ...(init.roomSync !== undefined ? { sync: init.roomSync } : {}),
  })
  // room lifecycle and consent (SPEC §9)
  if (init.roomSync !== undefined)
    await app.register(roomLifecycleRoutes, { rooms: init.rooms, sync: init.roomSync })
  await app.register(yjsRoutes, {
    rooms: init.rooms,
    // agents in foreign rooms: a capability session whose chain is revoked closes its sockets too
    sessions: {
      onRevoked: (listener) => {
        const off = sessions.onRevoked(listener)
        const offCapability = init.foreignAccess?.onRevoked(listener)
        return () => {
          off()
          offCapability?.()
        }
      },
    },
    logger: init.logger,
  })
  await app.register(meshListRoutes, { source: init.meshes })
  if (init.registry !== undefined) {
    await app.register(registryRoutes, { registry: init.registry, perSource: init.registryPerSource })
  }
  // members: enrolment and removal (SPEC §8)
  if (init.members !== undefined) await app.register(memberRoutes, { members: init.members })
  // Outbound invocation over libp2p
  if (init.outbound !== undefined) await app.register(outboundRoutes, { send: init.outbound })
  // revocation people can use (SPEC §9)
  if (init.revocations !== undefined) await app.register(revocationRoutes, { revocations: init.revocations })
  // accountability across meshes (SPEC §11): signed tree heads and Merkle proofs
  await app.register(auditMerkleRoutes, { audit: init.audit, heads: init.heads })
  // phase-1 HTTP federation (SPEC §12)
  if (init.httpFederation !== undefined)
    await app.register(federationRoutes, { federation: init.httpFederation })
  // tasks across meshes (SPEC §13)
  await app.register(taskRoutes, { rooms: init.rooms })
  // the model proxy (SPEC §13)
  if (init.model !== undefined) {
    await app.register(modelRoutes, {
      model: init.model,
      ...(init.modelMaxBodyBytes !== undefined ? { maxBodyBytes: init.modelMaxBodyBytes } : {}),
    })
  }
  // coordination fees (SPEC §10)
  if (init.ledger !== undefined) await app.register(ledgerRoutes, { ledger: init.ledger })
  // files in rooms (issue 18): uploads, reads (Range), attachments checked before a post
  if (init.files !== undefined) await app.register(fileRoutes, { files: init.files })
  // relay ledger forgive (SPEC §10)
  if (init.forgiveLedger !== undefined)
    await app.register(ledgerForgiveRoutes, { forgive: init.forgiveLedger })
  registerConsole(app)
}
