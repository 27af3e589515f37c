import type { Registry } from 'prom-client'
import { MemberBook } from '../auth/index.ts'
import { loadMesh, meshStore } from '../mesh-info.ts'
import { StoreMonitor } from '../store/index.ts'
import type { NodeWiring } from './parts.ts'

export interface StoreWiring extends NodeWiring {
  metrics: Registry
}

/** The store of the data dir with its health probe, then what it holds: the mesh's key, history, info and members. */
export async function startStore({ parts, init, logger, metrics }: StoreWiring): Promise<void> {
  const store = await meshStore(init.dataDir, logger)
  await store.open()
  parts.set('store', store)
  parts.onStop(() => store.close())
  const storeMonitor = new StoreMonitor({
    store,
    logger,
    metrics,
    ...(init.store?.probeIntervalMs !== undefined ? { intervalMs: init.store.probeIntervalMs } : {}),
  })
  await parts.add('storeMonitor', storeMonitor)
  // The registry hears at once that this node cannot serve, and again when it can.
  storeMonitor.onChange(() => void parts.find('heartbeat')?.beat())

  const { key, info, history } = await loadMesh(store, init.dataDir)
  parts.set('key', key)
  parts.set('history', history)
  parts.set('info', info)
  const { architectDid, architectKeyName } = info
  // members: the live tier is the trust store's; older records take the new shape (SPEC §8)
  const members = new MemberBook({
    store,
    architectDid,
    ...(architectKeyName !== undefined ? { architectKeyName } : {}),
    createdAt: info.createdAt,
    tierOf: (did) => parts.find('authority')?.trust.tierOf(did),
  })
  await members.migrate()
  parts.set('members', members)
}
