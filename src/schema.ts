import { createRequire } from 'node:module'
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv'

/** A JSON Schema check compiled on first use, with ajv's `errors` of the last call. */
export interface LazyValidator<T> {
  (value: unknown): value is T
  readonly errors: ErrorObject[] | null | undefined
}

/** The one strict ajv's options: also those scripts/gen-validators.ts precompiles with. */
export const AJV_OPTIONS = { allErrors: false, coerceTypes: false, removeAdditional: false } as const

let shared: Ajv | undefined

/** Issue 15 (cold start): ajv (63 modules) loads on the first schema compiled, not with this module. */
function sharedAjv(): Ajv {
  if (shared === undefined) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv')
    shared = new Ajv(AJV_OPTIONS)
  }
  return shared
}

/**
 * One strict ajv (no coercion, nothing removed, first error only) for every wire and
 * store shape. Schemas compile when first used, not at import: compiling them all
 * cost ~140 ms of every node's cold start. `precompiled`: the same schema compiled
 * ahead by ajv's standalone code (src/kernel/precompiled-validators.ts, for the checks
 * a node makes before it is ready), used as it is — the same code ajv would compile.
 */
export function lazyValidator<T>(
  schema: object,
  precompiled?: (value: unknown) => boolean,
): LazyValidator<T> {
  let compiled = precompiled as ValidateFunction<T> | undefined
  const validate = ((value: unknown) => {
    compiled ??= sharedAjv().compile<T>(schema)
    return compiled(value)
  }) as LazyValidator<T>
  Object.defineProperty(validate, 'errors', { get: () => compiled?.errors })
  return validate
}
