import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createLogger, type Logger } from '../../src/log.ts'
import {
  createMeshDatastore,
  createMeshDiscovery,
  createMeshLibp2p,
  type DhtVariant,
  type MeshDiscovery,
  type MeshDiscoveryInit,
  type MeshLibp2p,
  type MeshLibp2pInit,
} from '../../src/p2p/index.ts'
import type { RecordGuardDatastore, RecordGuardInit } from '../../src/p2p/record-datastore.ts'
import { createRegistryBootstrap } from '../../src/registry/index.ts'
import { MeshStore } from '../../src/store/index.ts'

/** Record content for tests that sign mesh records by hand. */
export const RECORD_CONTENT = {
  name: 'alice-mesh',
  multiaddrs: [],
  protocolVersions: [],
  version: '0.1.0',
  members: 1,
  bots: 0,
  rooms: 0,
}

export interface LogLine {
  event?: string
  [field: string]: unknown
}

/** A pino logger whose JSON lines land in `lines`. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  })
  return { logger, lines }
}

/** A libp2p host on 127.0.0.1:0, stopped when the test ends; `limits` for its DHT store. */
export async function startHost(
  t: TestContext,
  opts: { key?: Ed25519KeyPair; dht?: DhtVariant; limits?: Omit<RecordGuardInit, 'selectors'> } = {},
): Promise<{ key: Ed25519KeyPair; libp2p: MeshLibp2p; datastore?: RecordGuardDatastore }> {
  const key = opts.key ?? Ed25519KeyPair.generate()
  const datastore = opts.dht === 'stock' ? undefined : createMeshDatastore(opts.limits)
  const libp2p = await createMeshLibp2p({ key, dht: opts.dht ?? 'mesh', ...(datastore ? { datastore } : {}) })
  t.after(() => libp2p.stop())
  return { key, libp2p, ...(datastore ? { datastore } : {}) }
}

export interface TestMesh {
  key: Ed25519KeyPair
  libp2p: MeshLibp2p
  store: MeshStore
  discovery: MeshDiscovery
  /** The DHT's record store (what this node holds for others). */
  datastore: RecordGuardDatastore
  lines: LogLine[]
  /** Stops discovery, libp2p and the store (idempotent; also run at teardown). */
  stop(): Promise<void>
  addr(): string
}

/** A whole p2p stack (store, libp2p, discovery) on port 0; everything stopped at teardown. */
export async function startMesh(
  t: TestContext,
  init: Partial<MeshDiscoveryInit> & {
    name: string
    key?: Ed25519KeyPair
    storePath?: string
    /** Builds the injected registry bootstrap, as the composition root does. */
    registryUrl?: string
    maxRegistryAttempts?: number
    /** Host options (listen addresses, relay service); reachability (SPEC §10). */
    host?: Pick<MeshLibp2pInit, 'listen' | 'relay'>
  },
): Promise<TestMesh> {
  const key = init.key ?? Ed25519KeyPair.generate()
  const dir = init.storePath ?? (await mkdtemp(join(tmpdir(), 'mesh-p2p-')))
  if (init.storePath === undefined) t.after(() => rm(dir, { recursive: true, force: true }))
  const store = new MeshStore({ path: dir })
  await store.open()
  const { logger, lines } = captureLogger()
  const datastore = createMeshDatastore()
  const libp2p = await createMeshLibp2p({ key, datastore, ...init.host })
  const { key: _, storePath: __, registryUrl, maxRegistryAttempts, host: ___, ...discoveryInit } = init
  const registry =
    registryUrl === undefined
      ? undefined
      : createRegistryBootstrap({
          registryUrl,
          logger,
          ...(maxRegistryAttempts !== undefined ? { maxAttempts: maxRegistryAttempts } : {}),
        })
  const discovery = createMeshDiscovery(
    { libp2p, key, store, logger, datastore },
    { version: '0.1.0', intervalMs: 500, ...(registry !== undefined ? { registry } : {}), ...discoveryInit },
  )
  const stop = async (): Promise<void> => {
    await discovery.stop()
    await libp2p.stop()
    await store.close()
  }
  t.after(stop)
  await discovery.start()
  return {
    key,
    libp2p,
    store,
    discovery,
    datastore,
    lines,
    stop,
    addr: () => String(libp2p.getMultiaddrs()[0]),
  }
}

/** Polls `probe` until it returns a value other than undefined/false, or fails at the deadline. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
