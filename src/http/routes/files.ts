import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { fileParamsSchema, roomParamsSchema, uploadQuerySchema } from '../../api/index.ts'
import { BadRequestError } from '../../errors.ts'
import type { FileRef, FileService } from '../../files/index.ts'
import { sessionOf } from './session.ts'

export interface FileRoutesInit {
  files: FileService
}

/** Types a browser may show inline (no script in them); everything else downloads. */
const INLINE =
  /^(image\/(png|jpeg|gif|webp|avif)|text\/plain|application\/pdf|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+)$/

/**
 * Files in rooms (issue 18, SPEC §13): `POST /api/rooms/:id/files` (the body is the file,
 * `application/octet-stream`, streamed into the blob store under the size cap),
 * `GET /api/files/:cid` (Range: 206 / 416), `GET /api/files` (the cache).
 */
export const fileRoutes: FastifyPluginAsync<FileRoutesInit> = async (fastify, { files }) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const onRequest = app.requireSession
  // The body stays a stream: the blob store reads it, hashing and counting.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))

  app.post(
    '/api/rooms/:id/files',
    {
      onRequest,
      bodyLimit: files.store.maxFileBytes + 1,
      schema: { params: roomParamsSchema, querystring: uploadQuerySchema },
    },
    async (request, reply) => {
      if (request.headers['content-type'] !== 'application/octet-stream')
        throw new BadRequestError('send the file as application/octet-stream')
      const length = request.headers['content-length']
      const declared = length !== undefined ? Number(length) : undefined
      const { name, mime } = request.query
      const body = request.body as AsyncIterable<Uint8Array>
      const file = await files.upload(sessionOf(request).did, request.params.id, body, {
        name,
        ...(mime !== undefined ? { mime } : {}),
        ...(declared !== undefined && Number.isFinite(declared) ? { declared } : {}),
      })
      return reply.status(201).send(file)
    },
  )

  app.get('/api/files', { onRequest }, async () => ({
    cached: files.store.cached(),
    cacheBytes: files.store.cacheBytes,
    maxFileBytes: files.store.maxFileBytes,
  }))

  app.get('/api/files/:cid', { onRequest, schema: { params: fileParamsSchema } }, async (request, reply) => {
    const { cid } = request.params
    const { file, size } = await files.open(sessionOf(request).did, cid)
    headers(reply, file, size)
    const range = parseRange(request.headers.range, size)
    if (range === 'unsatisfiable') {
      return reply
        .status(416)
        .header('content-range', `bytes */${size}`)
        .type('application/json')
        .send({ error: { code: 'MESH_BAD_REQUEST', message: 'range not satisfiable', details: { size } } })
    }
    if (range === undefined) {
      reply.header('content-length', size)
      return reply.send(size === 0 ? '' : await files.store.read(cid))
    }
    reply
      .status(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
      .header('content-length', range.end - range.start + 1)
    return reply.send(await files.store.read(cid, range))
  })
}

function headers(reply: FastifyReply, file: FileRef, size: number): void {
  const inline = INLINE.test(file.mime)
  reply
    .type(inline ? file.mime : 'application/octet-stream')
    .header('accept-ranges', 'bytes')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('cache-control', 'private, max-age=31536000, immutable')
    .header('x-file-size', size)
    .header(
      'content-disposition',
      `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(file.name)}`,
    )
}

/**
 * One range of `Range: bytes=a-b | a- | -n` (inclusive); undefined for none (or a form
 * not understood, which the whole file answers); `unsatisfiable` past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  let start: number
  let end: number
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0) return 'unsatisfiable'
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
    if (m[2] !== '' && Number(m[2]) < start) return undefined
  }
  if (start >= size || end < start) return 'unsatisfiable'
  return { start, end }
}
