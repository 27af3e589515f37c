import type { HumanKeystore } from '../identity/index.ts'
import type { Output } from './format.ts'

/** What every command group is given: the one formatter, the environment, the human keystore. */
export interface CliContext {
  /** Everything a command prints goes through it. */
  out: Output
  /** The process environment (`MESH_KEYSTORE`, `MESH_LOG_LEVEL`); read only in the CLI. */
  env: Record<string, string | undefined>
  /** The human keystore: `$MESH_KEYSTORE`, default `~/.mesh-keys/`. */
  keystore(): HumanKeystore
}
