/** Store: one LevelDB per node, a sublevel per concern, schema version checked on open. */
export {
  MARK_FILE,
  MeshStore,
  type MeshStoreInit,
  STORE_SCHEMA_VERSION,
  type StoreOperation,
  SUBLEVELS,
  type Sublevel,
  type SublevelName,
  type TornLog,
} from './mesh-store.ts'
export { SeenSet } from './seen-set.ts'
export { type StoreHealth, StoreMonitor, type StoreMonitorInit } from './store-monitor.ts'
