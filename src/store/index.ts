/** Store: one LevelDB per node, a sublevel per concern, schema version checked on open. */
export {
  MeshStore,
  type MeshStoreInit,
  STORE_SCHEMA_VERSION,
  type StoreOperation,
  SUBLEVELS,
  type Sublevel,
  type SublevelName,
} from './mesh-store.ts'
