import type { AgentService } from './agents/index.ts'
import type { AuditLog } from './audit/index.ts'
import { type Authority, type MemberService, SessionService } from './auth/index.ts'
import { localHttpUrl, MESH_NODE_VERSION, type MeshNodeInit, nodeOriginGuard } from './config.ts'
// accountability across meshes (SPEC §11)
import { MESH_AUDIT_PROTOCOL } from './connections/audit-protocol.ts'
// phase-1 HTTP federation (SPEC §12)
import type { HttpFederation } from './connections/http-federation.ts'
import {
  type ConnectionService,
  DEFAULT_POLICY,
  MESH_CONNECT_PROTOCOL,
  type PolicyService,
  type RejectedLog,
} from './connections/index.ts'
// outbound invocation over libp2p
import { MESH_INVOKE_PROTOCOL } from './connections/invoke-protocol.ts'
import type { FileService } from './files/index.ts' // files in rooms (issue 18)
import {
  createHttpApp,
  type HealthInfo,
  listenOrConflict,
  registerNodeRoutes,
  toHttpError,
} from './http/index.ts'
import type { KeyRotationResult, KeysView } from './keys/index.ts'
import { createLogger, type Logger } from './log.ts'
import type { FederationSettings, MeshManifest } from './manifest/index.ts'
import { removeAddressFile, writeAddressFile } from './node/address-file.ts'
import { type AgentsWiring, startAgents } from './node/agents.ts'
import { startAudit } from './node/audit.ts'
// accountability across meshes (SPEC §11)
import { startAuditProtocol } from './node/audit-protocol.ts'
import { replaceAuthority, startAuthority } from './node/authority.ts'
import {
  type ConnectionsWiring,
  federationSettings,
  policySummary,
  startConnections,
} from './node/connections.ts'
import { startFiles } from './node/files.ts' // files in rooms (issue 18)
import { startForeignAccess } from './node/foreign-access.ts'
// phase-1 HTTP federation (SPEC §12)
import { startHttpFederation } from './node/http-federation.ts'
// invocations and audit requests over phase-1 HTTP (SPEC §12)
import { startHttpRequests } from './node/http-requests.ts'
// one invocation dispatcher
import { startInvocations } from './node/invocations.ts'
import { KeyRotation } from './node/key-rotation.ts'
import { startLedger } from './node/ledger.ts' // coordination fees (SPEC §10)
import { Lifecycle, type LifecycleStatus } from './node/lifecycle.ts'
// store and forward (SPEC §10)
import { startMailbox } from './node/mailbox.ts'
import { buildManifest } from './node/manifest.ts'
import { startMembers } from './node/members.ts'
// reachable by URL (SPEC §10)
import { meshProfile } from './node/mesh-profile.ts'
import { collectNodeMetrics, NodeMetrics } from './node/metrics.ts'
// the model proxy (SPEC §13)
import { startModel } from './node/model.ts'
// revocation that travels (SPEC §9)
import { startNames } from './node/names.ts'
import {
  type NetworkWiring,
  restartOnKey,
  startDiscovery,
  startHeartbeat,
  startHost,
  startRegistry,
} from './node/network.ts'
// outbound invocation over libp2p
import { type OutboundSend, startOutbound } from './node/outbound.ts'
import type { NodeParts } from './node/parts.ts'
import { ReputationFeed } from './node/reputation.ts'
import { startRevocations } from './node/revocations.ts'
import { type RoomsWiring, startRoomSync, startRooms } from './node/rooms.ts'
import { startupError } from './node/startup-errors.ts'
import { type StoreWiring, startStore } from './node/store.ts'
import { MESH_KAD_PROTOCOL, type MeshLibp2p } from './p2p/index.ts'
import type { PublicMesh } from './registry/index.ts'
import {
  MESH_ROOMS_PROTOCOL,
  MESH_ROOMS_PROTOCOL_DEFLATE,
  type RoomManager,
  type RoomSync,
} from './rooms/index.ts'
import type { MeshStore } from './store/index.ts'

export { NODE_ADDRESS_FILE } from './node/address-file.ts'

export type MeshNodeStatus = LifecycleStatus

/** What the root hands every wiring module: the union of what each asks for. */
type RootWiring = StoreWiring & NetworkWiring & ConnectionsWiring & RoomsWiring & AgentsWiring

/**
 * The composition root: the one place that knows every concrete piece. Start order
 * is store → identity → p2p → registry → discovery → audit → authority → connections
 * → rooms → agents → http; stop runs it backwards, and a failed start rolls back
 * whatever had started (node/lifecycle.ts). The wiring of each part is in src/node/.
 */
export class MeshNode {
  readonly init: MeshNodeInit
  readonly logger: Logger
  readonly metrics = new NodeMetrics() // issue 15 (cold start): default metrics load after ready
  readonly #parts: Lifecycle<NodeParts>
  readonly #wiring: RootWiring
  readonly #rotation: KeyRotation

  // The running parts, each read by name from the lifecycle (defined in the static
  // block below: one accessor each, throwing while the node is not started).
  declare readonly libp2p: MeshLibp2p
  declare readonly store: MeshStore
  /** The federation handshake, connection records and outbox. */
  declare readonly connections: ConnectionService
  /** Rooms: authenticated Yjs documents, their store and their HTTP and y-websocket faces. */
  declare readonly rooms: RoomManager
  /** Shared rooms: shares, links to peer meshes (`/mesh/rooms/1.0.0`), catch-up progress. */
  declare readonly roomSync: RoomSync
  declare readonly audit: AuditLog
  /** Who may do what here: UCAN chains, credentials, tiers and reputation (SPEC §4). */
  declare readonly authority: Authority
  /** This mesh's agents and `agent/invoke`. */
  declare readonly agents: AgentService
  declare readonly policy: PolicyService
  declare readonly rejected: RejectedLog
  // members: enrolment and removal (SPEC §8)
  declare readonly memberService: MemberService
  // files in rooms (issue 18)
  declare readonly files: FileService

  static {
    const exposed = [
      'libp2p',
      'store',
      'connections',
      'rooms',
      'roomSync',
      'audit',
      'authority',
      'agents',
      'policy',
      'rejected',
      'memberService',
      'files', // files in rooms (issue 18)
    ] as const
    for (const name of exposed) {
      Object.defineProperty(MeshNode.prototype, name, {
        get(this: MeshNode) {
          return this.#parts.get(name)
        },
      })
    }
  }

  constructor(init: MeshNodeInit) {
    this.init = init
    this.logger = init.logger ?? createLogger()
    const parts = new Lifecycle<NodeParts>({ logger: this.logger }, { what: 'node' })
    this.#parts = parts
    const wiring: RootWiring = {
      parts,
      init,
      logger: this.logger,
      metrics: this.metrics,
      reputation: new ReputationFeed({ interactions: () => parts.find('interactions') }),
      multiaddrs: () => this.multiaddrs(),
      protocolVersions: () => this.protocolVersions(),
      counts: () => this.#counts(),
      // reachable by URL (SPEC §10)
      profile: () =>
        meshProfile({
          http: this.init.publicUrl ?? parts.find('httpUrl'), // none until HTTP listens
          ...(this.init.description !== undefined ? { description: this.init.description } : {}),
          agents: parts.find('agents')?.cards() ?? [],
        }),
      keys: () => this.keys(),
    }
    this.#wiring = wiring
    this.#rotation = new KeyRotation({
      dataDir: init.dataDir,
      logger: this.logger,
      acts: () => parts.get('gate'),
      audit: () => parts.get('audit'),
      history: () => parts.get('history'),
      adopt: async (history) => {
        parts.set('history', history)
        parts.set('key', history.current)
        await replaceAuthority(wiring, history.current)
        // members: credentials of the new key for every member (SPEC §8)
        await parts.find('memberService')?.reissue()
      },
      restart: async (key, whileStopped) => {
        await restartOnKey(wiring, key, whileStopped)
        await writeAddressFile(wiring)
      },
      announce: (identity, records) => this.connections.announceKeyRotation(identity, records),
      peerId: () => this.peerId,
    })
  }

  get status(): MeshNodeStatus {
    return this.#parts.status
  }

  get did(): string {
    return this.#parts.get('key').did
  }

  get name(): string {
    return this.#parts.get('info').name
  }

  get peerId(): string {
    return this.libp2p.peerId.toString()
  }

  get httpUrl(): string {
    return this.#parts.get('httpUrl')
  }

  // phase-1 HTTP federation (SPEC §12): the HTTP face and the peers' HTTP bases
  get httpFederation(): HttpFederation {
    return this.#parts.get('httpFederation')
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((ma) => ma.toString())
  }

  async start(): Promise<void> {
    // issue 14: a data dir or an address another process holds is MESH_CONFLICT
    await this.#parts
      .start(() => this.#startAll())
      .catch(async (err: unknown) => {
        throw await startupError(err, this.init.dataDir)
      })
    // issue 15 (cold start): prom-client's default metrics load once the ready line is out
    setImmediate(() => {
      try {
        if (this.status === 'started') this.metrics.loadDefaults()
      } catch (err) {
        this.logger.warn({ event: 'node.metrics_failed', err }, 'the default metrics did not load')
      }
    })
  }

  async stop(): Promise<void> {
    if (await this.#parts.stop()) this.logger.info({ event: 'node.stopped' }, 'node stopped')
  }

  async #startAll(): Promise<void> {
    const { init, logger: log } = this
    const parts = this.#parts
    const wiring = this.#wiring
    await startStore(wiring)
    collectNodeMetrics(this.metrics, parts)
    await startHost(wiring)
    await startRegistry(wiring)
    await startDiscovery(wiring)
    await startAudit(wiring)
    await startAuthority(wiring)
    await startConnections(wiring)
    await startRooms(wiring)
    await startRoomSync(wiring)
    await startHttpFederation(wiring) // phase-1 HTTP federation (SPEC §12)
    await startAgents(wiring)
    // members: enrolment and removal (SPEC §8)
    await startMembers(wiring)
    await startRevocations(wiring) // revocation that travels (SPEC §9)
    startForeignAccess(wiring)
    startInvocations(wiring) // one invocation dispatcher (POST /api/invoke and /mesh/invoke/1.0.0)
    await startModel(wiring) // the model proxy (SPEC §13)
    startNames(wiring) // names for identities (issue 14)
    const outbound = await startOutbound(wiring) // outbound invocation over libp2p
    await startAuditProtocol(wiring) // accountability across meshes (SPEC §11): /mesh/audit/1.0.0
    startHttpRequests(wiring) // invocations and audit requests over phase-1 HTTP (SPEC §12)
    await startMailbox(wiring) // store and forward (SPEC §10): /mesh/mailbox/1.0.0
    await startLedger(wiring) // coordination fees (SPEC §10): /mesh/receipts/1.0.0
    await startFiles(wiring) // files in rooms (issue 18): blobs and /mesh/files/1.0.0
    await this.#startHttp(parts.get('store'), outbound)
    await startHeartbeat(wiring)

    // Discovery published its first record before rooms and agents were up; the counts
    // in it (bots, rooms) are known only now, so publish again at once, not a round later.
    parts.find('discovery')?.setContent({})

    await writeAddressFile(wiring)
    parts.onStop(() => removeAddressFile(init.dataDir))
    log.info(
      {
        event: 'node.started',
        did: this.did,
        peerId: this.peerId,
        http: this.httpUrl,
        multiaddrs: this.multiaddrs(),
      },
      'node started',
    )
  }

  /** The federation settings in force; the policy routes set them when the policy changes. */
  set #federation(settings: FederationSettings) {
    this.#parts.set('federation', settings)
  }

  get #registry() {
    return this.#parts.find('registry')
  }

  async #startHttp(store: MeshStore, outbound?: OutboundSend): Promise<void> {
    const app = createHttpApp({
      logger: this.logger,
      metrics: this.metrics,
      ...(this.init.http?.connections !== undefined ? { connections: this.init.http.connections } : {}),
      rateLimits: this.init.http?.rateLimits,
      originGuard: nodeOriginGuard(this.init), // issue 14: and the public URL's name
    })
    const node = this
    const members = this.#parts.get('members')
    const sessions = new SessionService({
      store,
      // A getter: sessions are opened against the current key, also after a rotation.
      get meshDid() {
        return node.did
      },
      roleOf: async (did) => members.role(did),
      logger: this.logger,
    })
    // A server error may be the store failing: probe it now rather than at the next tick.
    app.addHook('onError', async (_request, _reply, err) => {
      if (toHttpError(err).status >= 500) void this.#parts.find('storeMonitor')?.check()
    })
    await sessions.start()
    this.#parts.onStop(() => sessions.stop())
    // members: a removed member's sessions end before its removal answers (SPEC §8)
    this.#parts.onStop(this.#parts.get('memberService').onRemoved((did) => sessions.endSessionsOf(did)))
    const audit = this.audit
    await registerNodeRoutes(app, {
      sessions,
      health: () => this.health(),
      manifest: () => this.manifest(),
      metrics: this.metrics,
      connections: this.connections,
      policy: this.policy,
      onPolicyChange: async (change) => {
        this.#federation = federationSettings(change.policy)
        // A mesh put on the deny list syncs no room from now on (node/rooms.ts).
        await this.#parts.find('roomSync')?.recheckPeers()
        await audit.append({
          action: 'federation.policy.changed',
          actor: change.actor,
          details: { previous: policySummary(change.previous), policy: policySummary(change.policy) },
        })
      },
      rejected: this.rejected,
      audit,
      keys: () => this.keys(),
      rotateKey: (input) => this.rotateKey(input),
      authority: () => this.authority,
      agents: this.agents,
      rooms: this.rooms,
      roomSync: this.roomSync,
      meshes: { list: async () => this.knownMeshes() },
      registry: this.#registry,
      registryPerSource: this.init.registry?.perSource,
      logger: this.logger,
      // members: enrolment and removal (SPEC §8)
      members: this.#parts.get('memberService'),
      // agents in foreign rooms (SPEC §8, way 2)
      foreignAccess: this.#parts.get('foreignAccess'),
      // one invocation dispatcher (POST /api/invoke and /mesh/invoke/1.0.0)
      invocations: this.#parts.get('invocations'),
      ...(outbound !== undefined ? { outbound } : {}),
      // revocation that travels (SPEC §9)
      revocations: this.#parts.get('revocations'),
      // names for identities (issue 14)
      names: this.#parts.get('names'),
      // files in rooms (issue 18)
      files: this.#parts.get('files'),
      // accountability across meshes (SPEC §11)
      heads: () => this.#parts.find('headBook'),
      // phase-1 HTTP federation (SPEC §12)
      httpFederation: this.#parts.get('httpFederation'),
      // the model proxy (SPEC §13)
      model: this.#parts.get('model'),
      ...(this.init.model?.maxBodyBytes !== undefined
        ? { modelMaxBodyBytes: this.init.model.maxBodyBytes }
        : {}),
      // coordination fees (SPEC §10)
      ledger: (options) => this.#parts.get('fees').view(options),
      // relay ledger forgive (SPEC §10)
      forgiveLedger: (did) => this.#parts.get('fees').forgive(did),
    })
    const host = this.init.http?.host ?? '127.0.0.1'
    const port = this.init.http?.port ?? 7700
    await listenOrConflict(app, host, port)
    this.#parts.onStop(() => app.close())
    const address = app.server.address()
    const boundPort = typeof address === 'object' && address !== null ? address.port : port
    // issue 14: a wildcard bind is reached on loopback by local clients (the address file)
    const httpUrl = this.#parts.set('httpUrl', localHttpUrl(host, boundPort))
    this.logger.debug(
      { event: 'http.listening', url: httpUrl, architect: this.#parts.get('info').architectDid },
      'http listening',
    )
  }

  async #counts(): Promise<{ members: number; bots: number; rooms: number }> {
    const counts = await this.#parts.get('members').counts()
    return { ...counts, rooms: (await this.#parts.find('rooms')?.list())?.length ?? 0 }
  }

  protocolVersions(): string[] {
    return [
      MESH_CONNECT_PROTOCOL,
      MESH_ROOMS_PROTOCOL,
      MESH_ROOMS_PROTOCOL_DEFLATE, // rooms at speed (issue 15): catch-up chunks deflated
      MESH_KAD_PROTOCOL,
      MESH_INVOKE_PROTOCOL,
      MESH_AUDIT_PROTOCOL, // accountability across meshes (SPEC §11)
    ]
  }

  health(): HealthInfo {
    const store = this.#parts.get('storeMonitor').health
    return {
      status: store.status,
      store,
      did: this.did,
      peerId: this.peerId,
      multiaddrs: this.multiaddrs(),
      version: MESH_NODE_VERSION,
      reachability: this.libp2p.services.reachability.status(), // reachability (SPEC §10)
    }
  }

  manifest(): MeshManifest {
    const parts = this.#parts
    return buildManifest({
      key: parts.get('key'),
      info: parts.get('info'),
      history: parts.get('history'),
      httpUrl: this.init.publicUrl ?? this.httpUrl, // issue 14: what others reach
      multiaddrs: this.multiaddrs(),
      protocolVersions: this.protocolVersions(),
      serveRegistry: this.init.serveRegistry === true,
      agents: parts.find('agents')?.cards() ?? [],
      federation: parts.find('federation') ?? federationSettings(DEFAULT_POLICY),
      model: parts.find('model')?.available === true, // the model proxy (SPEC §13)
      ...(this.init.description !== undefined ? { description: this.init.description } : {}), // SPEC §10
    })
  }

  /**
   * The meshes this node knows: what it discovered through the DHT, and, when it
   * serves a registry, what heartbeats told it (a heartbeat is fresher, so it wins).
   */
  async knownMeshes(): Promise<PublicMesh[]> {
    const byDid = new Map<string, PublicMesh>()
    for (const mesh of (await this.#parts.find('discovery')?.list()) ?? []) byDid.set(mesh.did, mesh)
    for (const mesh of (await this.#registry?.all()) ?? []) byDid.set(mesh.did, mesh)
    for (const did of this.#parts.find('history')?.keys ?? [this.did]) byDid.delete(did)
    return [...byDid.values()]
  }

  /** The mesh's keys: identity (genesis did), every key oldest first, and the rotation chain. */
  keys(): KeysView {
    const history = this.#parts.get('history')
    return {
      identity: history.identity,
      current: this.did,
      keys: [...history.keys],
      rotations: history.records,
    }
  }

  /** Rotates the mesh key on the architect's act (node/key-rotation.ts); one rotation at a time. */
  async rotateKey(input: { ucan: string; actor: string }): Promise<KeyRotationResult> {
    return this.#rotation.rotate(input)
  }
}

export function createMeshNode(init: MeshNodeInit): MeshNode {
  return new MeshNode(init)
}
