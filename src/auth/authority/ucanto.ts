/**
 * ucanto — @ucanto/core and @ucanto/validator, with @ipld/dag-ucan, dag-json, dag-cbor,
 * car and cborg: about 170 modules — loads the first time the authority needs it, not
 * with the node (issue 15, cold start). The load is synchronous (`require` of the ES
 * modules, the very instances an `import` gets), so a synchronous caller (`decodeToken`'s
 * library path, `viewOf`, a capability parser) can never find it missing; once loaded it
 * is kept. A failure to load is MESH_INTERNAL, each time it is asked for.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type * as Core from '@ucanto/core'
import type * as Validator from '@ucanto/validator'
import { MeshError } from '../../errors.ts'

const requireModule = createRequire(import.meta.url)
let core: typeof Core | undefined
let validator: typeof Validator | undefined

/** An ES module loaded synchronously; MESH_INTERNAL when it cannot load (exported for its test). */
export function loadModuleSync<T>(specifier: string): T {
  try {
    return requireModule(fileURLToPath(import.meta.resolve(specifier))) as T
  } catch (err) {
    throw new MeshError('MESH_INTERNAL', `${specifier} did not load: ${(err as Error).message}`)
  }
}

/** @ucanto/core, loaded on the first call. */
export function ucantoCore(): typeof Core {
  core ??= loadModuleSync<typeof Core>('@ucanto/core')
  return core
}

/** @ucanto/validator (capability parsers and their schemas), loaded on the first call. */
export function ucantoValidator(): typeof Validator {
  validator ??= loadModuleSync<typeof Validator>('@ucanto/validator')
  return validator
}
