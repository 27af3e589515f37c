import type { AgentService, Invocations } from '../agents/index.ts'
// accountability across meshes (SPEC §11)
import type { HeadBook } from '../audit/head-book.ts'
import type { AuditLog } from '../audit/index.ts'
import type {
  ActGate,
  Authority,
  InteractionReporter,
  MemberBook,
  MemberService,
  RevocationService,
} from '../auth/index.ts'
import type { MeshNodeInit } from '../config.ts'
// accountability across meshes (SPEC §11)
import type { AuditProtocol } from '../connections/audit-protocol.ts'
// outbound invocation over libp2p
// phase-1 HTTP federation (SPEC §12)
import type { HttpFederation, HttpPeerBook, HttpRoute } from '../connections/http-federation.ts'
import type { HttpRooms } from '../connections/http-rooms.ts'
import type { ConnectionService, PeerBook, PolicyService, RejectedLog } from '../connections/index.ts'
import type { InvokeProtocol } from '../connections/invoke-protocol.ts'
import type { ProtocolHandler } from '../connections/peer-request.ts'
// files in rooms (issue 18)
import type { FileServer, FileService } from '../files/index.ts'
import type { Ed25519KeyPair, MeshKeyHistory } from '../identity/index.ts'
// coordination fees (SPEC §10)
import type { RelayFees } from '../ledger/index.ts'
import type { Logger } from '../log.ts'
// store and forward (SPEC §10)
import type { MailboxClient, MailboxRelay } from '../mailbox/index.ts'
import type { FederationSettings } from '../manifest/index.ts'
import type { MeshInfo } from '../mesh-info.ts'
// the model proxy (SPEC §13)
import type { ModelProxy } from '../model/index.ts'
import type { createMeshDatastore, MeshDiscovery, MeshLibp2p } from '../p2p/index.ts'
import type { HeartbeatClient, RegistryService } from '../registry/index.ts'
import type { ForeignAccess, RoomManager, RoomSync } from '../rooms/index.ts'
import type { MeshStore, StoreMonitor } from '../store/index.ts'
import type { Lifecycle } from './lifecycle.ts'
import type { NameResolver } from './names.ts'

/** Everything a running node holds, by name; all of it is gone after stop. */
export interface NodeParts {
  store: MeshStore
  storeMonitor: StoreMonitor
  /** The mesh's current key; `history` holds its identity (genesis did) and rotation chain. */
  key: Ed25519KeyPair
  history: MeshKeyHistory
  info: MeshInfo
  members: MemberBook
  datastore: ReturnType<typeof createMeshDatastore>
  libp2p: MeshLibp2p
  registry: RegistryService
  discovery: MeshDiscovery
  audit: AuditLog
  authority: Authority
  interactions: InteractionReporter
  policy: PolicyService
  /** The federation settings now in force (the policy's, as the manifest shows them). */
  federation: FederationSettings
  rejected: RejectedLog
  /** The peers sublevel, shared by connections (its one writer) and rooms (peer key histories). */
  peerBook: PeerBook
  gate: ActGate
  connections: ConnectionService
  rooms: RoomManager
  roomSync: RoomSync
  agents: AgentService
  heartbeat: HeartbeatClient
  httpUrl: string
  // members: enrolment and removal (SPEC §8)
  memberService: MemberService
  // Outbound invocation over libp2p
  outbound: InvokeProtocol
  // Agents in foreign rooms under a chain (SPEC §8, way 2)
  foreignAccess: ForeignAccess
  // one invocation dispatcher (POST /api/invoke and /mesh/invoke/1.0.0)
  invocations: Invocations
  // revocation that travels (SPEC §9)
  revocations: RevocationService
  // names for identities (issue 14)
  names: NameResolver
  // accountability across meshes (SPEC §11): /mesh/audit/1.0.0, the heads held of other meshes
  auditProtocol: AuditProtocol
  headBook: HeadBook
  // phase-1 HTTP federation (SPEC §12)
  httpFederation: HttpFederation
  httpPeers: HttpPeerBook
  httpRoute: HttpRoute
  httpRooms: HttpRooms
  // the model proxy (SPEC §13)
  model: ModelProxy
  // store and forward (SPEC §10): this mesh's mailbox client; the relay's mailboxes on --relay nodes
  mailbox: MailboxClient
  mailboxRelay: MailboxRelay
  // coordination fees (SPEC §10): receipts, the relay's ledger, the free allowance
  fees: RelayFees
  // files in rooms (issue 18): the service, its /mesh/files/1.0.0 server and handler
  files: FileService
  fileServer: FileServer
  filesProtocol: ProtocolHandler
}

/**
 * The board the node's wiring modules share: each reads the parts it needs at the
 * moment it needs them, so that it sees what a key rotation put in place.
 */
export type NodeLifecycle = Lifecycle<NodeParts>

/** What every wiring module is given besides the board. */
export interface NodeWiring {
  parts: NodeLifecycle
  init: MeshNodeInit
  logger: Logger
}
