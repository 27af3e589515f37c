import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { AgentService, echoAgent, summarizerAgent } from './agents/index.ts'
import { AuditLog, CHECKPOINT_FILE, CheckpointGossip } from './audit/index.ts'
import {
  Authority,
  CAPABILITIES,
  DidResolver,
  InteractionReporter,
  type SessionRole,
  SessionService,
} from './auth/index.ts'
import { MESH_NODE_VERSION, type MeshNodeInit, originGuardOf } from './config.ts'
import {
  ActGate,
  CONNECT_PROTOCOLS,
  ConnectionService,
  DEFAULT_POLICY,
  EnvelopeVerifier,
  type FederationPolicy,
  HUMAN_ACTS,
  HumanActVerifier,
  MESH_CONNECT_PROTOCOL,
  PeerBook,
  PolicyService,
  RejectedLog,
} from './connections/index.ts'
import {
  createHttpApp,
  type FastifyInstance,
  type HealthInfo,
  registerNodeRoutes,
  toHttpError,
} from './http/index.ts'
import { type Ed25519KeyPair, type MeshKeyHistory, readRetiredKey, rotateMeshKey } from './identity/index.ts'
import type { KeyRotationResult, KeysView } from './keys/index.ts'
import { createLogger, type Logger } from './log.ts'
import { type FederationSettings, type MeshManifest, signManifest } from './manifest/index.ts'
import { loadMesh, type MeshInfo, meshStore } from './mesh-info.ts'
import {
  createMeshDatastore,
  createMeshDiscovery,
  createMeshLibp2p,
  MESH_KAD_PROTOCOL,
  type MeshDiscovery,
  type MeshLibp2p,
} from './p2p/index.ts'
import { HeartbeatClient, type PublicMesh, RegistryService } from './registry/index.ts'
import {
  type AcceptedPeer,
  MESH_ROOMS_PROTOCOL,
  type Room,
  RoomManager,
  type RoomOrigin,
  type RoomRejection,
  RoomSync,
} from './rooms/index.ts'
import { type MeshStore, StoreMonitor } from './store/index.ts'

/** The file in the data dir where a running node says where its API is, for `mesh <command>` clients. */
export const NODE_ADDRESS_FILE = 'node.json'

export type MeshNodeStatus = 'stopped' | 'starting' | 'started' | 'stopping'

// Audit rows are bounded (8 KiB): long allow/deny lists are recorded by size.
function policySummary(policy: FederationPolicy): Record<string, unknown> {
  const list = (dids: string[]) => (dids.length <= 20 ? dids : { count: dids.length })
  return { ...federationSettings(policy), allow: list(policy.allow), deny: list(policy.deny) }
}

function federationSettings(policy: FederationPolicy): FederationSettings {
  return {
    mode: policy.mode,
    autoAccept: policy.autoAccept,
    maxForeignParticipantsPerRoom: policy.maxForeignParticipantsPerRoom,
    maxBackfillEventsPerRequest: policy.maxBackfillEventsPerRequest,
  }
}

/** What the manifest lists as invocable here by other meshes, given a valid chain. */
const INVOCABLE_CAPABILITIES = [
  'agent/invoke',
  'connection/accept',
  'connection/decline',
  'connection/disconnect',
  'mesh/connect',
  'room/post',
  'room/read',
].filter((can) => CAPABILITIES[can] !== undefined)

interface Member {
  did: string
  role: Exclude<SessionRole, 'architect'>
  name: string
}

/**
 * The composition root: the one place that knows every concrete piece. Start order
 * is store → identity → p2p → registry → discovery → http; stop runs it backwards,
 * and a failed start rolls back whatever had started.
 */
export class MeshNode {
  readonly init: MeshNodeInit
  readonly logger: Logger
  readonly metrics = new Registry()
  #status: MeshNodeStatus = 'stopped'
  #store?: MeshStore
  #storeMonitor?: StoreMonitor
  #key?: Ed25519KeyPair
  /** The mesh's identity (genesis did) and rotation chain; `#key` is its current key. */
  #history?: MeshKeyHistory
  #info?: MeshInfo
  #libp2p?: MeshLibp2p
  #datastore?: ReturnType<typeof createMeshDatastore>
  /** The peers sublevel, shared by connections (its one writer) and rooms (peer key histories). */
  #peerBook?: PeerBook
  #authority?: Authority
  #gate?: ActGate
  #interactions?: InteractionReporter
  #agents?: AgentService
  #rotation: Promise<unknown> = Promise.resolve()
  #discovery?: MeshDiscovery
  #registry?: RegistryService
  #heartbeat?: HeartbeatClient
  #audit?: AuditLog
  #policy?: PolicyService
  #rejected?: RejectedLog
  #connections?: ConnectionService
  #rooms?: RoomManager
  #roomSync?: RoomSync
  #federation?: FederationSettings
  #http?: FastifyInstance
  #httpUrl?: string
  #stack: Array<() => Promise<void>> = []

  constructor(init: MeshNodeInit) {
    this.init = init
    this.logger = init.logger ?? createLogger()
  }

  get status(): MeshNodeStatus {
    return this.#status
  }

  get did(): string {
    return this.#required(this.#key, 'key').did
  }

  get name(): string {
    return this.#required(this.#info, 'info').name
  }

  get peerId(): string {
    return this.#required(this.#libp2p, 'libp2p').peerId.toString()
  }

  get httpUrl(): string {
    return this.#required(this.#httpUrl, 'http')
  }

  get libp2p(): MeshLibp2p {
    return this.#required(this.#libp2p, 'libp2p')
  }

  get store(): MeshStore {
    return this.#required(this.#store, 'store')
  }

  /** The federation handshake, connection records and outbox. */
  get connections(): ConnectionService {
    return this.#required(this.#connections, 'connections')
  }

  /** Rooms: authenticated Yjs documents, their store and their HTTP and y-websocket faces. */
  get rooms(): RoomManager {
    return this.#required(this.#rooms, 'rooms')
  }

  /** Shared rooms: shares, links to peer meshes (`/mesh/rooms/1.0.0`), catch-up progress. */
  get roomSync(): RoomSync {
    return this.#required(this.#roomSync, 'roomSync')
  }

  get audit(): AuditLog {
    return this.#required(this.#audit, 'audit')
  }

  /** Who may do what here: UCAN chains, credentials, tiers and reputation (SPEC §4). */
  get authority(): Authority {
    return this.#required(this.#authority, 'authority')
  }

  /** This mesh's agents and `agent/invoke`. */
  get agents(): AgentService {
    return this.#required(this.#agents, 'agents')
  }

  get policy(): PolicyService {
    return this.#required(this.#policy, 'policy')
  }

  get rejected(): RejectedLog {
    return this.#required(this.#rejected, 'rejected')
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((ma) => ma.toString())
  }

  async start(): Promise<void> {
    if (this.#status !== 'stopped') throw new Error(`cannot start a node that is ${this.#status}`)
    this.#status = 'starting'
    try {
      await this.#startAll()
      this.#status = 'started'
    } catch (err) {
      await this.#unwind()
      this.#status = 'stopped'
      throw err
    }
  }

  async stop(): Promise<void> {
    if (this.#status !== 'started') return
    this.#status = 'stopping'
    await this.#unwind()
    this.#status = 'stopped'
    this.logger.info({ event: 'node.stopped' }, 'node stopped')
  }

  async #startAll(): Promise<void> {
    const { init } = this
    const store = await meshStore(init.dataDir, this.logger)
    await store.open()
    this.#store = store
    this.#stack.push(() => store.close())
    const storeMonitor = new StoreMonitor({
      store,
      logger: this.logger,
      metrics: this.metrics,
      ...(init.store?.probeIntervalMs !== undefined ? { intervalMs: init.store.probeIntervalMs } : {}),
    })
    storeMonitor.start()
    this.#storeMonitor = storeMonitor
    this.#stack.push(() => storeMonitor.stop())
    // The registry hears at once that this node cannot serve, and again when it can.
    storeMonitor.onChange(() => void this.#heartbeat?.beat())

    const { key, info, history } = await loadMesh(store, init.dataDir)
    this.#key = key
    this.#history = history
    this.#info = info
    const log = this.logger

    collectDefaultMetrics({ register: this.metrics })
    const meshCount = new Gauge({
      name: 'mesh_discovered_meshes',
      help: 'Meshes this node knows through the DHT',
      registers: [this.metrics],
      collect: async () => {
        meshCount.set((await this.#discovery?.list())?.length ?? 0)
      },
    })

    const datastore = await this.#openDatastore()
    // After libp2p has stopped (the stack unwinds in reverse): its last DHT writes reach disk.
    this.#stack.push(async () => this.#datastore?.flush())
    const libp2p = await createMeshLibp2p({ key, listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'], datastore })
    this.#libp2p = libp2p
    // Through the field: a key rotation replaces the host (and discovery, heartbeat) under way.
    this.#stack.push(async () => this.#libp2p?.stop())

    const heartbeatIntervalMs = init.heartbeat?.intervalMs ?? 30_000
    if (init.serveRegistry === true) {
      const { perSource: _, ...limits } = init.registry ?? {}
      const registry = new RegistryService({
        store,
        logger: log,
        heartbeatIntervalMs,
        metrics: this.metrics,
        ...limits,
      })
      await registry.start()
      this.#registry = registry
      this.#stack.push(() => registry.stop())
    }

    const discovery = this.#createDiscovery(libp2p, key, datastore)
    await discovery.start()
    this.#discovery = discovery
    this.#stack.push(async () => this.#discovery?.stop())

    await this.#startConnections(store, key, info, discovery)

    const rooms = new RoomManager({
      store,
      // Getters: rooms name the mesh by its identity and seal with whatever key it holds now.
      key: () => this.#required(this.#key, 'key'),
      ownKeys: () => this.keys(),
      peerKeys: () => this.#required(this.#peerBook, 'peers').list(),
      meshName: info.name,
      logger: log,
      rejected: this.rejected,
      onRejected: (event) => this.#roomRefused(event),
      maxForeignParticipantsPerRoom: () => this.#federation?.maxForeignParticipantsPerRoom ?? 50,
      ...(init.rooms?.compactEvery !== undefined ? { compactEvery: init.rooms.compactEvery } : {}),
      localPrincipal: async (did) => {
        if (did === info.architectDid) return { localId: info.architectKeyName ?? 'architect', tier: 1 }
        const member = await store.sublevel<Member>('members').get(did)
        return member === undefined ? undefined : { localId: member.name, tier: 4 }
      },
    })
    await rooms.start()
    this.#rooms = rooms
    this.#stack.push(() => rooms.stop())
    this.#watchRoomTrust(rooms)

    const node = this
    const roomSync = new RoomSync(
      {
        // A getter: a key rotation replaces the host (and restarts this service).
        get libp2p() {
          return node.libp2p
        },
        key: () => this.#required(this.#key, 'key'),
        store,
        rooms,
        acts: this.#required(this.#gate, 'acts'),
        audit: this.audit,
        logger: log,
        acceptedPeers: async () => {
          const accepted = new Map<string, AcceptedPeer>()
          for (const p of await this.connections.peers()) {
            if (p.state === 'accepted' || p.state === 'degraded')
              accepted.set(p.did, {
                did: p.did,
                keys: p.keys,
                name: p.name,
                architectDid: p.architectDid,
                multiaddrs: p.multiaddrs,
              })
          }
          return accepted
        },
        policy: async () => this.#federation ?? federationSettings(DEFAULT_POLICY),
      },
      {
        architectDid: info.architectDid,
        ...(init.rooms?.syncIntervalMs !== undefined ? { checkIntervalMs: init.rooms.syncIntervalMs } : {}),
        ...(init.rooms?.dialTimeoutMs !== undefined ? { dialTimeoutMs: init.rooms.dialTimeoutMs } : {}),
        ...(init.rooms?.inbound !== undefined ? { inbound: init.rooms.inbound } : {}),
      },
    )
    await roomSync.start()
    this.#roomSync = roomSync
    this.#stack.push(async () => this.#roomSync?.stop())

    await this.#startAgents(store)

    const http = await this.#startHttp(store, info)
    this.#http = http

    const heartbeat = this.#createHeartbeat(key)
    if (heartbeat !== undefined) {
      await heartbeat.start()
      this.#heartbeat = heartbeat
      this.#stack.push(async () => this.#heartbeat?.stop())
    }

    // Discovery published its first record before rooms and agents were up; the counts
    // in it (bots, rooms) are known only now, so publish again at once, not a round later.
    this.#discovery?.setContent({})

    const addressFile = join(init.dataDir, NODE_ADDRESS_FILE)
    await this.#writeAddressFile()
    this.#stack.push(() => rm(addressFile, { force: true }))
    log.info(
      {
        event: 'node.started',
        did: key.did,
        peerId: this.peerId,
        http: this.httpUrl,
        multiaddrs: this.multiaddrs(),
      },
      'node started',
    )
  }

  /** Audit log → policy, rejected log, verifiers → the connection service (wire handler and outbox). */
  async #startConnections(
    store: MeshStore,
    key: Ed25519KeyPair,
    info: MeshInfo,
    discovery: MeshDiscovery,
  ): Promise<void> {
    const log = this.logger
    const peerBook = new PeerBook(store)
    this.#peerBook = peerBook
    // Every key the mesh has held verifies its rows, also after a restart on a later key.
    const audit = new AuditLog({
      store,
      key,
      logger: log,
      knownKeys: () => this.#history?.keys ?? [],
      mesh: this.#history?.identity ?? key.did,
      // Beside the store, not in it: a store restored from an older copy does not bring
      // an older checkpoint with it.
      checkpointFile: join(this.init.dataDir, CHECKPOINT_FILE),
    })
    await audit.start()
    this.#audit = audit
    this.#stack.push(() => audit.stop())
    await this.#startAuthority(store, key, info)

    const policy = new PolicyService({ store })
    this.#policy = policy
    this.#federation = federationSettings(await policy.get())
    const rejected = new RejectedLog({
      store,
      logger: log.child({ area: 'federation' }),
      metrics: this.metrics,
    })
    this.#rejected = rejected
    const envelopes = new EnvelopeVerifier({
      store,
      selfDid: () => this.did,
      protocols: CONNECT_PROTOCOLS,
      logger: log,
    })
    envelopes.start()
    this.#stack.push(async () => envelopes.stop())

    const settings = this.init.connections ?? {}
    const acts = new HumanActVerifier({ store })
    const gate = new ActGate({
      authority: () => this.authority,
      interim: acts,
      architectDid: () => info.architectDid,
      acceptInterim: () => this.init.authority?.acceptInterimActs ?? false,
    })
    this.#gate = gate
    const node = this
    const connections = new ConnectionService(
      {
        // Getters: a key rotation restarts the service on a new host and key.
        get libp2p() {
          return node.libp2p
        },
        key: () => this.#required(this.#key, 'key'),
        store,
        audit,
        policy,
        rejected,
        envelopes,
        acts: gate,
        // The human behind an act is counted with its mesh; a message without one, the mesh alone.
        onInteraction: ({ mesh, principal, outcome, reason }) => {
          const [did, options] =
            principal !== undefined ? [principal, { mesh }] : [mesh, { scope: 'mesh' as const }]
          if (outcome === 'accepted') this.#interactions?.accepted(did, reason, options)
          else this.#interactions?.refused(did, reason, options)
        },
        peers: peerBook,
        checkpoints: new CheckpointGossip({ audit, logger: log }),
        logger: log,
        resolvePeer: async (did, options) => {
          const found = this.#discovery ?? discovery
          const record =
            (await found.get(did, options)) ??
            (await found.lookup(did, { ...options, first: true }).catch(() => undefined))?.record
          return record === undefined ? undefined : { multiaddrs: record.multiaddrs }
        },
        fetchRotations: async (did, options) => {
          const { record } = await (this.#discovery ?? discovery).lookup(did, options)
          if (record.identity === undefined || record.rotations === undefined) return undefined
          return { identity: record.identity, rotations: record.rotations, multiaddrs: record.multiaddrs }
        },
      },
      {
        name: info.name,
        architectDid: info.architectDid,
        multiaddrs: () => this.multiaddrs(),
        ownDids: () => this.#history?.keys ?? [this.did],
        protocolVersions: () => this.protocolVersions(),
        outbox: {
          ...(settings.retryBaseMs !== undefined ? { baseDelayMs: settings.retryBaseMs } : {}),
          ...(settings.retryMaxMs !== undefined ? { maxDelayMs: settings.retryMaxMs } : {}),
        },
        ...(settings.sendTimeoutMs !== undefined ? { sendTimeoutMs: settings.sendTimeoutMs } : {}),
        ...(settings.probeIntervalMs !== undefined ? { probeIntervalMs: settings.probeIntervalMs } : {}),
        ...(settings.rateLimit !== undefined ? { rateLimit: settings.rateLimit } : {}),
        ...(settings.maxPendingInboundPerPeer !== undefined
          ? { maxPendingInboundPerPeer: settings.maxPendingInboundPerPeer }
          : {}),
      },
    )
    await connections.start()
    this.#connections = connections
    this.#stack.push(async () => this.#connections?.stop())
  }

  /**
   * The authority on the current mesh key (its root delegation to the architect, the
   * architect's membership credential, trust), the reporter that feeds reputation, and
   * the periodic prune of spent invocations.
   */
  async #startAuthority(store: MeshStore, key: Ed25519KeyPair, info: MeshInfo): Promise<void> {
    const authority = this.#createAuthority(store, key, info)
    await authority.start()
    this.#authority = authority
    // Through the field: a key rotation replaces the authority.
    this.#stack.push(async () => this.#authority?.stop())
    const reporter = new InteractionReporter({
      trust: () => this.authority.trust,
      logger: this.logger,
      ...(this.init.authority?.interactionFlushMs !== undefined
        ? { flushIntervalMs: this.init.authority.interactionFlushMs }
        : {}),
    })
    reporter.start()
    this.#interactions = reporter
    this.#stack.push(() => reporter.stop())
    const prune = setInterval(() => {
      this.#authority?.prune().catch((err: unknown) => {
        this.logger.error({ event: 'authority.prune_failed', err }, 'pruning spent invocations failed')
      })
    }, this.init.authority?.pruneIntervalMs ?? 600_000)
    prune.unref()
    this.#stack.push(async () => clearInterval(prune))
  }

  async #replaceAuthority(key: Ed25519KeyPair, info: MeshInfo): Promise<void> {
    const next = this.#createAuthority(this.store, key, info)
    await next.start()
    const previous = this.#authority
    this.#authority = next
    await previous?.stop()
  }

  #createAuthority(store: MeshStore, key: Ed25519KeyPair, info: MeshInfo): Authority {
    const settings = this.init.authority ?? {}
    return new Authority({
      store,
      audit: this.audit,
      meshKey: key,
      meshName: info.name,
      architectDid: info.architectDid,
      ...(settings.didWeb !== undefined ? { resolver: new DidResolver(settings.didWeb) } : {}),
      trust: {
        logger: this.logger,
        ...(settings.violationThreshold !== undefined
          ? { violationThreshold: settings.violationThreshold }
          : {}),
        ...(settings.violationWindowMs !== undefined
          ? { violationWindowMs: settings.violationWindowMs }
          : {}),
      },
    })
  }

  /** This mesh's agents (echo, and a room summarizer reading as its own did). */
  async #startAgents(store: MeshStore): Promise<void> {
    const rooms = this.rooms
    const agents = new AgentService({
      store,
      audit: this.audit,
      authority: () => this.authority,
      agents: [
        echoAgent(),
        summarizerAgent({
          lastMessages: async (roomId, asDid, count) => {
            const all = []
            let after: string | undefined
            do {
              const page = await rooms.messages(roomId, asDid, { limit: 200, ...(after ? { after } : {}) })
              all.push(...page.messages)
              if (all.length > 4 * count) all.splice(0, all.length - count)
              after = page.nextCursor ?? undefined
            } while (after !== undefined)
            return all.slice(-count)
          },
        }),
      ],
      invokeUrl: () => (this.#httpUrl === undefined ? undefined : `${this.#httpUrl}/api/invoke`),
      enroll: async (agent) => {
        const members = store.sublevel<Member>('members')
        if ((await members.get(agent.did)) === undefined) {
          await members.put(agent.did, { did: agent.did, role: 'agent', name: agent.name })
        }
      },
      onInteraction: (did, outcome, reason) => {
        if (outcome === 'accepted') this.#interactions?.accepted(did, reason)
        else this.#interactions?.refused(did, reason)
      },
      logger: this.logger,
    })
    await agents.start()
    this.#agents = agents
  }

  /** Reputation from rooms: refused updates at once, accepted peer updates coalesced. */
  #roomRefused(event: RoomRejection): void {
    const reason = `room.update ${String(event.error.details.reason ?? event.error.code)}`
    if (event.sender.kind === 'peer') {
      this.#interactions?.refused(event.sender.meshDid, reason, { scope: 'mesh' })
    } else {
      this.#interactions?.refused(event.sender.did, reason, { mesh: event.sender.mesh })
    }
  }

  #watchRoomTrust(rooms: RoomManager): void {
    const watch = (room: Room) => {
      room.doc.on('update', (_update: Uint8Array, origin: unknown) => {
        const o = origin as RoomOrigin | undefined
        if (o?.source === 'peer') this.#interactions?.accepted(o.meshDid, 'room.update', { scope: 'mesh' })
      })
    }
    for (const room of rooms.loaded()) watch(room)
    rooms.onLoad(watch)
  }

  async #startHttp(store: MeshStore, info: MeshInfo): Promise<FastifyInstance> {
    const app = createHttpApp({
      logger: this.logger,
      metrics: this.metrics,
      ...(this.init.http?.connections !== undefined ? { connections: this.init.http.connections } : {}),
      rateLimits: this.init.http?.rateLimits,
      originGuard: originGuardOf(this.init.http),
    })
    const node = this
    const sessions = new SessionService({
      store,
      // A getter: sessions are opened against the current key, also after a rotation.
      get meshDid() {
        return node.did
      },
      roleOf: async (did) => this.#roleOf(did),
      logger: this.logger,
    })
    // A server error may be the store failing: probe it now rather than at the next tick.
    app.addHook('onError', async (_request, _reply, err) => {
      if (toHttpError(err).status >= 500) void this.#storeMonitor?.check()
    })
    await sessions.start()
    this.#stack.push(async () => sessions.stop())
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
    })

    const host = this.init.http?.host ?? '127.0.0.1'
    const port = this.init.http?.port ?? 7700
    await app.listen({ host, port })
    this.#stack.push(() => app.close())
    const address = app.server.address()
    const boundPort = typeof address === 'object' && address !== null ? address.port : port
    this.#httpUrl = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`
    this.logger.debug(
      { event: 'http.listening', url: this.#httpUrl, architect: info.architectDid },
      'http listening',
    )
    return app
  }

  async #roleOf(did: string): Promise<SessionRole | undefined> {
    if (did === this.#info?.architectDid) return 'architect'
    const member = await this.store.sublevel<Member>('members').get(did)
    return member?.role
  }

  async #counts(): Promise<{ members: number; bots: number; rooms: number }> {
    let members = 1
    let bots = 0
    for await (const member of this.store.sublevel<Member>('members').values()) {
      if (member.role === 'agent') bots++
      else members++
    }
    return { members, bots, rooms: (await this.#rooms?.list())?.length ?? 0 }
  }

  async #recordContent() {
    return {
      name: this.name,
      multiaddrs: this.multiaddrs(),
      protocolVersions: this.protocolVersions(),
      version: MESH_NODE_VERSION,
      ...(await this.#counts()),
    }
  }

  protocolVersions(): string[] {
    return [MESH_CONNECT_PROTOCOL, MESH_ROOMS_PROTOCOL, MESH_KAD_PROTOCOL]
  }

  health(): HealthInfo {
    const store = this.#required(this.#storeMonitor, 'store monitor').health
    return {
      status: store.status,
      store,
      did: this.did,
      peerId: this.peerId,
      multiaddrs: this.multiaddrs(),
      version: MESH_NODE_VERSION,
    }
  }

  manifest(): MeshManifest {
    const key = this.#required(this.#key, 'key')
    const info = this.#required(this.#info, 'info')
    const endpoints: MeshManifest['endpoints'] = { http: this.httpUrl, libp2p: this.multiaddrs() }
    if (this.init.serveRegistry === true) endpoints.registry = this.httpUrl
    return signManifest(key, {
      name: info.name,
      version: MESH_NODE_VERSION,
      architect: info.architectDid,
      endpoints,
      protocolVersions: this.protocolVersions(),
      capabilities: INVOCABLE_CAPABILITIES,
      agents: this.#agents?.cards() ?? [],
      federation: this.#federation ?? federationSettings(DEFAULT_POLICY),
      keyHistory: this.#keyHistory(info),
    })
  }

  /**
   * The meshes this node knows: what it discovered through the DHT, and, when it
   * serves a registry, what heartbeats told it (a heartbeat is fresher, so it wins).
   */
  async knownMeshes(): Promise<PublicMesh[]> {
    const byDid = new Map<string, PublicMesh>()
    for (const mesh of (await this.#discovery?.list()) ?? []) byDid.set(mesh.did, mesh)
    for (const mesh of (await this.#registry?.all()) ?? []) byDid.set(mesh.did, mesh)
    for (const did of this.#history?.keys ?? [this.did]) byDid.delete(did)
    return [...byDid.values()]
  }

  // ---------------------------------------------------------------- key rotation

  /** The mesh's keys: identity (genesis did), every key oldest first, and the rotation chain. */
  keys(): KeysView {
    const history = this.#required(this.#history, 'key history')
    return {
      identity: history.identity,
      current: this.did,
      keys: [...history.keys],
      rotations: history.records,
    }
  }

  /**
   * Rotates the mesh key on the architect's act `mesh/rotate-key` (with = the current
   * did): a new key and its rotation record are written to the data dir (old keys kept),
   * the audit log records the hand-over (signed by the old key) and signs on with the
   * new one; then the libp2p host restarts on the new PeerId with discovery (which
   * republishes under the new did and leaves a "moved" record under the old ones), the
   * connection service and the registry heartbeat (which carries the chain) following;
   * finally every connected peer is sent the chain through the durable outbox. The
   * store and the HTTP API stay up throughout. One rotation at a time.
   */
  async rotateKey(input: { ucan: string; actor: string }): Promise<KeyRotationResult> {
    const run = this.#rotation.then(async () => {
      const gate = this.#required(this.#gate, 'acts')
      const info = this.#required(this.#info, 'info')
      const previous = this.#required(this.#key, 'key')
      const act = await gate.local(input.ucan, { audience: previous.did, act: HUMAN_ACTS.rotateKey })
      let rotated: Awaited<ReturnType<typeof rotateMeshKey>>
      try {
        rotated = await rotateMeshKey(this.init.dataDir, this.#required(this.#history, 'key history'))
      } catch (err) {
        await gate.release(act)
        throw err
      }
      const { history, record } = rotated
      await this.audit.rotateKey(history.current, {
        details: { identity: history.identity, seq: record.seq, by: act.issuer },
        with: act.operations,
      })
      this.#history = history
      this.#key = history.current
      // The authority follows: a root delegation and the architect's credential from the new key.
      await this.#replaceAuthority(history.current, info)
      this.logger.info(
        {
          event: 'node.key_rotated',
          identity: history.identity,
          from: previous.did,
          to: history.current.did,
          seq: record.seq,
        },
        'mesh key rotated',
      )
      let announcedTo: string[] = []
      await this.#restartOnKey(history.current, async () => {
        // Queued while the outbox is stopped, so that nothing signed by the new key
        // reaches a peer before the chain that introduces it.
        announcedTo = await this.connections.announceKeyRotation(history.identity, history.records)
      })
      return {
        identity: history.identity,
        previous: previous.did,
        did: history.current.did,
        peerId: this.peerId,
        seq: record.seq,
        announcedTo,
      }
    })
    this.#rotation = run.catch(() => {})
    return run
  }

  /**
   * Stops what runs on the old key (heartbeat, connection service, discovery, then the
   * libp2p host) and starts it again on `key`, on the same listen addresses, in
   * dependency order. Components that register libp2p protocols or sign with the
   * mesh key belong in this list.
   */
  async #restartOnKey(key: Ed25519KeyPair, whileStopped: () => Promise<void>): Promise<void> {
    const listen = this.multiaddrs().map((a) => a.replace(/\/p2p\/[^/]+$/, ''))
    await this.#heartbeat?.stop()
    await this.#connections?.stop()
    await this.#roomSync?.stop()
    await whileStopped()
    await this.#discovery?.stop()
    await this.#libp2p?.stop()
    await this.#datastore?.flush()
    const datastore = await this.#openDatastore()
    const libp2p = await createMeshLibp2p({
      key,
      listen: listen.length > 0 ? listen : (this.init.listen ?? []),
      datastore,
    })
    this.#libp2p = libp2p
    const discovery = this.#createDiscovery(libp2p, key, datastore)
    await discovery.start()
    this.#discovery = discovery
    await this.#connections?.start()
    await this.#roomSync?.start()
    const heartbeat = this.#createHeartbeat(key)
    if (heartbeat !== undefined) {
      await heartbeat.start()
      this.#heartbeat = heartbeat
    }
    await this.#writeAddressFile()
  }

  /**
   * libp2p's datastore, holding in memory the DHT records and provider records this node
   * keeps for the network, written through to the store's `dht` sublevel so that a
   * restart keeps them (and the directory) too.
   */
  async #openDatastore(): Promise<ReturnType<typeof createMeshDatastore>> {
    const datastore = createMeshDatastore({
      ...this.init.dht,
      persist: this.store.sublevel<string>('dht'),
      logger: this.logger,
    })
    const loaded = await datastore.load()
    this.logger.debug({ event: 'dht.loaded', keys: loaded, records: datastore.records }, 'DHT keys loaded')
    this.#datastore = datastore
    return datastore
  }

  #createDiscovery(
    libp2p: MeshLibp2p,
    key: Ed25519KeyPair,
    datastore: ReturnType<typeof createMeshDatastore>,
  ): MeshDiscovery {
    const { init } = this
    const info = this.#required(this.#info, 'info')
    return createMeshDiscovery(
      { libp2p, key, store: this.store, logger: this.logger, datastore },
      {
        name: info.name,
        version: MESH_NODE_VERSION,
        protocolVersions: this.protocolVersions(),
        intervalMs: init.discovery?.intervalMs ?? 10_000,
        bootstrap: init.bootstrap ?? [],
        ...(init.registryUrl !== undefined ? { registryUrl: init.registryUrl } : {}),
        announce: init.public === true,
        content: async () => this.#counts(),
        keys: async () => {
          const history = this.#history
          if (history === undefined || history.records.length === 0) return undefined
          const retired = await Promise.all(
            history.keys.slice(0, -1).map((did) => readRetiredKey(this.init.dataDir, did)),
          )
          return { record: { identity: history.identity, rotations: history.records }, retired }
        },
      },
    )
  }

  #createHeartbeat(key: Ed25519KeyPair): HeartbeatClient | undefined {
    const { init } = this
    if (init.public !== true || init.registryUrl === undefined) return undefined
    return new HeartbeatClient({
      registryUrl: init.registryUrl,
      key,
      store: this.store,
      logger: this.logger,
      intervalMs: init.heartbeat?.intervalMs ?? 30_000,
      content: async () => this.#recordContent(),
      rotations: () => this.#history?.records,
      healthy: () => this.#storeMonitor?.health.status !== 'unhealthy',
    })
  }

  async #writeAddressFile(): Promise<void> {
    const info = this.#required(this.#info, 'info')
    await writeFile(
      join(this.init.dataDir, NODE_ADDRESS_FILE),
      `${JSON.stringify({
        http: this.httpUrl,
        did: this.did,
        identity: this.#history?.identity ?? this.did,
        peerId: this.peerId,
        pid: process.pid,
        architectDid: info.architectDid,
        architectKeyName: info.architectKeyName ?? null,
      })}\n`,
      { mode: 0o600 },
    )
  }

  /** The manifest's keyHistory: every key with its validity and the record that introduced it. */
  #keyHistory(info: MeshInfo): MeshManifest['keyHistory'] {
    const history = this.#required(this.#history, 'key history')
    return history.keys.map((did, i) => {
      const introduced = history.records[i - 1]
      const retiredBy = history.records[i]
      return {
        did,
        validFrom: introduced === undefined ? info.createdAt : new Date(introduced.ts).toISOString(),
        ...(retiredBy !== undefined ? { validUntil: new Date(retiredBy.ts).toISOString() } : {}),
        ...(introduced !== undefined
          ? { rotationSignature: introduced.sigPrevious, rotation: introduced }
          : {}),
      }
    })
  }

  async #unwind(): Promise<void> {
    while (this.#stack.length > 0) {
      const stop = this.#stack.pop() as () => Promise<void>
      try {
        await stop()
      } catch (err) {
        this.logger.error({ event: 'node.stop_failed', err }, 'a component failed to stop')
      }
    }
    this.#http = undefined
    this.#discovery = undefined
    this.#registry = undefined
    this.#heartbeat = undefined
    this.#connections = undefined
    this.#roomSync = undefined
    this.#audit = undefined
    this.#authority = undefined
    this.#gate = undefined
    this.#interactions = undefined
    this.#agents = undefined
    this.#policy = undefined
    this.#rejected = undefined
    this.#libp2p = undefined
    this.#storeMonitor = undefined
  }

  #required<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new Error(`node is not started (${what} missing)`)
    return value
  }
}

export function createMeshNode(init: MeshNodeInit): MeshNode {
  return new MeshNode(init)
}
