import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { AuditLog, registerAuditRoutes } from './audit/index.ts'
import { type SessionRole, SessionService } from './auth/index.ts'
import { MESH_NODE_VERSION, type MeshNodeInit } from './config.ts'
import {
  CONNECT_PROTOCOLS,
  ConnectionService,
  DEFAULT_POLICY,
  EnvelopeVerifier,
  type FederationPolicy,
  HumanActVerifier,
  MESH_CONNECT_PROTOCOL,
  PeerBook,
  PolicyService,
  RejectedLog,
  registerConnectionRoutes,
  registerPolicyRoutes,
  registerRejectedRoutes,
} from './connections/index.ts'
import {
  createHttpApp,
  type HealthInfo,
  registerCoreRoutes,
  registerSessionRoutes,
  requireSession,
} from './http/index.ts'
import type { Ed25519KeyPair } from './identity/index.ts'
import { createLogger, type Logger } from './log.ts'
import { type FederationSettings, type MeshManifest, signManifest } from './manifest/index.ts'
import { loadMesh, type MeshInfo, STORE_DIR } from './mesh-info.ts'
import {
  createMeshDatastore,
  createMeshDiscovery,
  createMeshLibp2p,
  MESH_KAD_PROTOCOL,
  type MeshDiscovery,
  type MeshLibp2p,
} from './p2p/index.ts'
import {
  HeartbeatClient,
  type PublicMesh,
  RegistryService,
  registerMeshListRoute,
  registerRegistryRoutes,
} from './registry/index.ts'
import { RoomManager, registerRoomRoutes, registerYjsWebsocket } from './rooms/index.ts'
import { MeshStore } from './store/index.ts'

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
  #key?: Ed25519KeyPair
  #info?: MeshInfo
  #libp2p?: MeshLibp2p
  #discovery?: MeshDiscovery
  #registry?: RegistryService
  #heartbeat?: HeartbeatClient
  #audit?: AuditLog
  #policy?: PolicyService
  #rejected?: RejectedLog
  #connections?: ConnectionService
  #rooms?: RoomManager
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

  get audit(): AuditLog {
    return this.#required(this.#audit, 'audit')
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
    const store = new MeshStore({ path: join(init.dataDir, STORE_DIR) })
    await store.open()
    this.#store = store
    this.#stack.push(() => store.close())

    const { key, info } = await loadMesh(store, init.dataDir)
    this.#key = key
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

    const datastore = createMeshDatastore()
    const libp2p = await createMeshLibp2p({ key, listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'], datastore })
    this.#libp2p = libp2p
    this.#stack.push(async () => libp2p.stop())

    const heartbeatIntervalMs = init.heartbeat?.intervalMs ?? 30_000
    if (init.serveRegistry === true) {
      const registry = new RegistryService({ store, logger: log, heartbeatIntervalMs, metrics: this.metrics })
      await registry.start()
      this.#registry = registry
      this.#stack.push(() => registry.stop())
    }

    const discovery = createMeshDiscovery(
      { libp2p, key, store, logger: log, datastore },
      {
        name: info.name,
        version: MESH_NODE_VERSION,
        protocolVersions: this.protocolVersions(),
        intervalMs: init.discovery?.intervalMs ?? 10_000,
        bootstrap: init.bootstrap ?? [],
        ...(init.registryUrl !== undefined ? { registryUrl: init.registryUrl } : {}),
        announce: init.public === true,
        content: async () => this.#counts(),
      },
    )
    await discovery.start()
    this.#discovery = discovery
    this.#stack.push(() => discovery.stop())

    await this.#startConnections(store, key, info, libp2p, discovery)

    const rooms = new RoomManager({
      store,
      key,
      meshName: info.name,
      logger: log,
      rejected: this.rejected,
      maxForeignParticipantsPerRoom: () => this.#federation?.maxForeignParticipantsPerRoom ?? 50,
      localPrincipal: async (did) => {
        if (did === info.architectDid) return { localId: info.architectKeyName ?? 'architect', tier: 1 }
        const member = await store.sublevel<Member>('members').get(did)
        return member === undefined ? undefined : { localId: member.name, tier: 4 }
      },
    })
    await rooms.start()
    this.#rooms = rooms
    this.#stack.push(() => rooms.stop())

    const http = await this.#startHttp(store, key, info)
    this.#http = http

    if (init.public === true && init.registryUrl !== undefined) {
      const heartbeat = new HeartbeatClient({
        registryUrl: init.registryUrl,
        key,
        store,
        logger: log,
        intervalMs: heartbeatIntervalMs,
        content: async () => this.#recordContent(),
      })
      await heartbeat.start()
      this.#heartbeat = heartbeat
      this.#stack.push(() => heartbeat.stop())
    }

    const addressFile = join(init.dataDir, NODE_ADDRESS_FILE)
    await writeFile(
      addressFile,
      `${JSON.stringify({
        http: this.httpUrl,
        did: key.did,
        peerId: this.peerId,
        pid: process.pid,
        architectDid: info.architectDid,
        architectKeyName: info.architectKeyName ?? null,
      })}\n`,
      { mode: 0o600 },
    )
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
    libp2p: MeshLibp2p,
    discovery: MeshDiscovery,
  ): Promise<void> {
    const log = this.logger
    const audit = new AuditLog({ store, key, logger: log })
    await audit.start()
    this.#audit = audit
    this.#stack.push(() => audit.stop())

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
      selfDid: () => key.did,
      protocols: CONNECT_PROTOCOLS,
      logger: log,
    })
    envelopes.start()
    this.#stack.push(async () => envelopes.stop())

    const settings = this.init.connections ?? {}
    const connections = new ConnectionService(
      {
        libp2p,
        key: () => key,
        store,
        audit,
        policy,
        rejected,
        envelopes,
        acts: new HumanActVerifier({ store }),
        peers: new PeerBook(store),
        logger: log,
        resolvePeer: async (did, options) => {
          const record =
            (await discovery.get(did, options)) ??
            (await discovery.lookup(did, { ...options, first: true }).catch(() => undefined))?.record
          return record === undefined ? undefined : { multiaddrs: record.multiaddrs }
        },
      },
      {
        name: info.name,
        architectDid: info.architectDid,
        multiaddrs: () => this.multiaddrs(),
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
    this.#stack.push(() => connections.stop())
  }

  async #startHttp(store: MeshStore, key: Ed25519KeyPair, info: MeshInfo): Promise<FastifyInstance> {
    const app = createHttpApp({ logger: this.logger, metrics: this.metrics })
    const sessions = new SessionService({
      store,
      meshDid: key.did,
      roleOf: async (did) => this.#roleOf(did),
    })
    registerCoreRoutes(app, {
      health: () => this.health(),
      manifest: () => this.manifest(),
      metrics: this.metrics,
    })
    registerSessionRoutes(app, sessions)
    const authenticate = requireSession(sessions)
    const audit = this.audit
    registerConnectionRoutes(app, { connections: this.connections, authenticate })
    registerPolicyRoutes(app, {
      policy: this.policy,
      authenticate,
      onChange: async (change) => {
        this.#federation = federationSettings(change.policy)
        await audit.append({
          action: 'federation.policy.changed',
          actor: change.actor,
          details: { previous: policySummary(change.previous), policy: policySummary(change.policy) },
        })
      },
    })
    registerRejectedRoutes(app, { rejected: this.rejected, authenticate })
    registerAuditRoutes(app, { audit, authenticate })
    registerRoomRoutes(app, { rooms: this.rooms, authenticate })
    await registerYjsWebsocket(app, { rooms: this.rooms, sessions, logger: this.logger })
    registerMeshListRoute(app, { list: async () => this.knownMeshes() })
    if (this.#registry !== undefined) registerRegistryRoutes(app, this.#registry)

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
    return [MESH_CONNECT_PROTOCOL, MESH_KAD_PROTOCOL]
  }

  health(): HealthInfo {
    return {
      status: 'ok',
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
      capabilities: [],
      agents: [],
      federation: this.#federation ?? federationSettings(DEFAULT_POLICY),
      keyHistory: [{ did: key.did, validFrom: info.createdAt }],
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
    byDid.delete(this.did)
    return [...byDid.values()]
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
    this.#audit = undefined
    this.#policy = undefined
    this.#rejected = undefined
    this.#libp2p = undefined
  }

  #required<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new Error(`node is not started (${what} missing)`)
    return value
  }
}

export function createMeshNode(init: MeshNodeInit): MeshNode {
  return new MeshNode(init)
}
