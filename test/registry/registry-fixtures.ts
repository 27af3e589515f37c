import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import {
  createHttpApp,
  meshListRoutes,
  type RegistryRoutesInit,
  registryRoutes,
} from '../../src/http/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import {
  type Heartbeat,
  type HeartbeatContent,
  type MeshPage,
  type PublicMesh,
  RegistryService,
  type RegistryServiceInit,
  signHeartbeat,
} from '../../src/registry/index.ts'
import type { MeshStore } from '../../src/store/index.ts'

/** A clock tests move by hand, so status changes need no sleeping. */
export class TestClock {
  ms: number

  constructor(ms = Date.UTC(2025, 0, 1)) {
    this.ms = ms
  }

  readonly now = (): number => this.ms

  advance(ms: number): void {
    this.ms += ms
  }
}

/** A heartbeat's content for `key`, valid at `ts`, with any fields overridden. */
export function contentFor(
  key: Ed25519KeyPair,
  ts: number,
  overrides: Partial<HeartbeatContent> = {},
): HeartbeatContent {
  const peerId = key.peerId().toString()
  return {
    did: key.did,
    peerId,
    name: 'a mesh',
    multiaddrs: [`/ip4/127.0.0.1/tcp/4001/p2p/${peerId}`],
    status: 'online',
    members: 3,
    bots: 1,
    rooms: 2,
    version: '0.1.0',
    protocolVersions: ['/mesh/kad/1.0.0'],
    seq: 1,
    ts,
    ...overrides,
  }
}

export const signedFor = (
  key: Ed25519KeyPair,
  ts: number,
  overrides: Partial<HeartbeatContent> = {},
): Heartbeat => signHeartbeat(key, contentFor(key, ts, overrides))

/**
 * A loose view of any reply of these routes, for asserting on: each reply has only
 * some of these fields, and the tests check which.
 */
export interface Reply {
  ok?: true
  status?: string
  meshes: PublicMesh[]
  nextCursor: string | null
  error: { code: string; message: string; details: Record<string, unknown> }
}

export interface TestRegistry {
  app: FastifyInstance
  registry: RegistryService
  metrics: Registry
  /** POSTs a heartbeat (any JSON value, or a raw string body) and returns status and body. */
  post(body: unknown): Promise<{ status: number; body: Reply }>
  /** GETs the public list with a raw query string. */
  get(query?: string): Promise<{ status: number; body: Reply }>
  /** Every mesh listed, in list order. */
  listed(): Promise<MeshPage['meshes']>
}

/**
 * A started registry behind the real HTTP app (inject, no socket), stopped when the test
 * ends. Admission stamps are off (powBits 0) unless `init` asks for them.
 */
export async function startTestRegistry(
  t: TestContext,
  store: MeshStore,
  init: Omit<RegistryServiceInit, 'store'> = {},
  routes: Omit<RegistryRoutesInit, 'registry'> = {},
): Promise<TestRegistry> {
  const metrics = new Registry()
  const registry = new RegistryService({ store, logger: silentLogger(), metrics, powBits: 0, ...init })
  await registry.start()
  const app = createHttpApp({ logger: silentLogger(), metrics })
  await app.register(meshListRoutes, { source: { list: () => registry.all() } })
  await app.register(registryRoutes, { registry, ...routes })
  await app.ready()
  t.after(async () => {
    await app.close()
    await registry.stop()
  })
  const post = async (body: unknown) => {
    const response = await app.inject({
      method: 'POST',
      url: '/api/meshes/heartbeat',
      headers: { 'content-type': 'application/json' },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { status: response.statusCode, body: response.json<Reply>() }
  }
  const get = async (query = '') => {
    const response = await app.inject({ method: 'GET', url: `/api/meshes/public${query}` })
    return { status: response.statusCode, body: response.json<Reply>() }
  }
  const listed = async () => {
    const { status, body } = await get('?limit=100')
    if (status !== 200) throw new Error(`list failed: ${JSON.stringify(body)}`)
    return (body as MeshPage).meshes
  }
  return { app, registry, metrics, post, get, listed }
}

/** Every key and value in the 'registry' sublevel, to prove a refusal stored nothing. */
export async function storedEntries(store: MeshStore): Promise<Array<[string, unknown]>> {
  return store.sublevel('registry').iterator().all()
}

/**
 * A started registry on a real socket (127.0.0.1, port 0), for clients that speak HTTP
 * (heartbeat clients, discovery); stopped when the test ends. Admission stamps are off
 * (powBits 0) unless `init` asks for them.
 */
export async function listenTestRegistry(
  t: TestContext,
  store: MeshStore,
  init: Omit<RegistryServiceInit, 'store'> = {},
): Promise<{ url: string; registry: RegistryService }> {
  const registry = new RegistryService({ store, powBits: 0, ...init })
  await registry.start()
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  await app.register(meshListRoutes, { source: { list: () => registry.all() } })
  await app.register(registryRoutes, { registry })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    await app.close()
    await registry.stop()
  })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { url: `http://127.0.0.1:${address.port}`, registry }
}
