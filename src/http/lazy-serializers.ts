/**
 * Response serializers that compile on a route's first answer of each status, not when
 * the server starts (issue 15, cold start): fast-json-stringify compiling every route's
 * response schemas was 100–200 ms of CPU before each node's ready line. The compiler is
 * fastify's own default (@fastify/fast-json-stringify-compiler, taken from where fastify
 * resolves it), with the same options and shared schemas, so an answer is serialized
 * exactly as before; only the moment of compiling moves.
 */
import { createRequire } from 'node:module'

type Serialize = (data: unknown) => string
type RouteSchema = {
  schema?: unknown
  method?: string
  url?: string
  httpStatus?: string
  contentType?: string
}
type SerializerCompiler = (route: RouteSchema) => Serialize
type BuildSerializer = (externalSchemas: unknown, serializerOpts: unknown) => SerializerCompiler

const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'))

/** Fastify's `schemaController.compilersFactory.buildSerializer`, compiling each schema on first use. */
export const buildLazySerializer: BuildSerializer = (externalSchemas, serializerOpts) => {
  let compiler: SerializerCompiler | undefined
  const compile = (route: RouteSchema): Serialize => {
    const buildDefault = fromFastify('@fastify/fast-json-stringify-compiler') as () => BuildSerializer
    compiler ??= buildDefault()(externalSchemas, serializerOpts)
    return compiler(route)
  }
  return (route) => {
    let serialize: Serialize | undefined
    return (data) => {
      serialize ??= compile(route)
      return serialize(data)
    }
  }
}
