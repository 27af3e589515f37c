/**
 * In-process nodes for the benchmarks: whole mesh p2p stacks (store, libp2p with the
 * mesh DHT, discovery) and stock kad-dht hosts, all on 127.0.0.1:0, each registered
 * with a NodePool that stops them whatever happens.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import {
  createMeshDatastore,
  createMeshDiscovery,
  createMeshLibp2p,
  type MeshDiscovery,
  type MeshDiscoveryInit,
  type MeshLibp2p,
  type MeshLibp2pInit,
  type RecordGuardDatastore,
} from '../../src/p2p/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { note, sleep } from './report.ts'

/** Host settings a benchmark may change (see createMeshLibp2p); default the node's own. */
export type HostLimits = Pick<MeshLibp2pInit, 'maxConnections' | 'connectionMonitor'>

function hostLimits(init: HostLimits): HostLimits {
  return {
    ...(init.maxConnections !== undefined ? { maxConnections: init.maxConnections } : {}),
    ...(init.connectionMonitor !== undefined ? { connectionMonitor: init.connectionMonitor } : {}),
  }
}

export interface BenchNode {
  key: Ed25519KeyPair
  libp2p: MeshLibp2p
  /** Mesh nodes only: libp2p's datastore (DHT records, provider records). */
  datastore?: RecordGuardDatastore
  /** Mesh nodes only. */
  discovery?: MeshDiscovery
  addr(): string
  stop(): Promise<void>
}

/** Every node and temporary directory a benchmark made; `stopAll` ends them all. */
export class NodePool {
  readonly #nodes = new Set<BenchNode>()
  readonly #dirs: string[] = []

  async dir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix))
    this.#dirs.push(dir)
    return dir
  }

  /**
   * A full mesh p2p stack, as the node runs it (discovery not started unless `start`);
   * `maxConnections` as createMeshLibp2p takes it.
   */
  async mesh(
    root: string,
    init: Partial<MeshDiscoveryInit> & { start?: boolean } & HostLimits = {},
  ): Promise<BenchNode> {
    const key = Ed25519KeyPair.generate()
    const store = new MeshStore({ path: join(root, key.peerId().toString()) })
    await store.open()
    const datastore = createMeshDatastore()
    let libp2p: MeshLibp2p
    try {
      libp2p = await createMeshLibp2p({
        key,
        datastore,
        ...hostLimits(init),
      })
    } catch (err) {
      await store.close()
      throw err
    }
    const { start, maxConnections: _max, connectionMonitor: _monitor, ...discoveryInit } = init
    const discovery = createMeshDiscovery(
      { libp2p, key, store, logger: silentLogger(), datastore },
      { name: `bench-${key.did.slice(-6).toLowerCase()}`, version: '0.1.0', ...discoveryInit },
    )
    const node = this.#add({
      key,
      libp2p,
      datastore,
      discovery,
      stop: async () => {
        await discovery.stop()
        await libp2p.stop()
        await store.close()
      },
    })
    if (start === true) await discovery.start()
    return node
  }

  /** A host with the `stock` kad-dht configuration (see host.ts) and nothing else. */
  async stock(init: HostLimits = {}): Promise<BenchNode> {
    const key = Ed25519KeyPair.generate()
    const libp2p = await createMeshLibp2p({ key, dht: 'stock', ...hostLimits(init) })
    return this.#add({ key, libp2p, stop: async () => await libp2p.stop() })
  }

  async stop(node: BenchNode): Promise<void> {
    if (!this.#nodes.delete(node)) return
    try {
      await node.stop()
    } catch (err) {
      note(`stopping ${node.libp2p.peerId} failed: ${(err as Error).message}`)
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#nodes].map((node) => this.stop(node)))
    await Promise.all(this.#dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
  }

  #add(parts: Omit<BenchNode, 'addr'>): BenchNode {
    const node: BenchNode = { ...parts, addr: () => String(parts.libp2p.getMultiaddrs()[0]) }
    this.#nodes.add(node)
    return node
  }
}

/**
 * Bootstraps a DHT: node i dials node i - 1 and `fanout - 1` other random earlier
 * nodes, then waits until every routing table holds at least min(fanout, n - 1) peers.
 */
export async function connect(nodes: BenchNode[], fanout = 4, timeoutMs = 30_000): Promise<void> {
  await Promise.all(
    nodes.map(async (node, i) => {
      if (i === 0) return
      const targets = new Set([i - 1])
      const candidates = Array.from({ length: i - 1 }, (_, j) => j).sort(() => Math.random() - 0.5)
      for (const j of candidates) {
        if (targets.size >= fanout) break
        targets.add(j)
      }
      for (const j of targets) {
        const peer = nodes[j] as BenchNode
        try {
          await node.libp2p.dial(peer.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
        } catch (err) {
          note(`bootstrap dial ${i} → ${j} failed: ${(err as Error).message}`)
        }
      }
    }),
  )
  const want = Math.min(fanout, nodes.length - 1)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const sizes = nodes.map((n) => (n.libp2p.services.dht as unknown as SingleKadDHT).routingTable.size)
    const short = sizes.filter((size) => size < want).length
    if (short === 0) return
    if (Date.now() > deadline) {
      note(`${short} of ${nodes.length} routing tables still hold fewer than ${want} peers; going on`)
      return
    }
    await sleep(50)
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      await fn(items[index] as T, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
