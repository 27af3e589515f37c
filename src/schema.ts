import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'

/** A JSON Schema check compiled on first use, with ajv's `errors` of the last call. */
export interface LazyValidator<T> {
  (value: unknown): value is T
  readonly errors: ErrorObject[] | null | undefined
}

let shared: Ajv | undefined

/**
 * One strict ajv (no coercion, nothing removed, first error only) for every wire and
 * store shape. Schemas compile when first used, not at import: compiling them all
 * cost ~140 ms of every node's cold start.
 */
export function lazyValidator<T>(schema: object): LazyValidator<T> {
  let compiled: ValidateFunction<T> | undefined
  const validate = ((value: unknown) => {
    shared ??= new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false })
    compiled ??= shared.compile<T>(schema)
    return compiled(value)
  }) as LazyValidator<T>
  Object.defineProperty(validate, 'errors', { get: () => compiled?.errors })
  return validate
}
