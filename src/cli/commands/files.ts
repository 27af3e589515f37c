/** Files in rooms (issue 18): `mesh file put <room> <path>`, `mesh file get <cid>`, `mesh file cache`. */
import { createWriteStream, openAsBlob } from 'node:fs'
import { basename } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { Command } from 'commander'
import type { FileAttachment } from '../../api/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

/** A type for the common extensions (the console previews images by it); else bytes. */
const TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  pdf: 'application/pdf',
  txt: 'text/plain',
  md: 'text/markdown',
  json: 'application/json',
  zip: 'application/zip',
  mp4: 'video/mp4',
  mp3: 'audio/mpeg',
}

export function mimeOf(path: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase()
  return (ext !== undefined ? TYPES[ext] : undefined) ?? 'application/octet-stream'
}

function fileLine(f: FileAttachment): string {
  return `${f.cid}  ${f.size} bytes  ${f.mime}  ${f.name}`
}

export function registerFileCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)
  const file = cli.command('file').description('files attached to room messages')

  clientCommand(file, 'put <room> <path>', 'upload a file to a room and post a message naming it', {
    proof: false,
  })
    .option('--name <name>', 'the file name shown (default: the path’s)')
    .option('--mime <type>', 'its type (default: from the extension)')
    .option('-m, --message <text>', 'the message posted with it (default: the file name)')
    .option('--no-post', 'only upload; print the attachment for a later post')
    .action(
      async (
        room: string,
        path: string,
        options: ClientOptions & { name?: string; mime?: string; message?: string; post: boolean },
      ) => {
        const { client: api } = await session(options)
        const name = options.name ?? basename(path)
        const uploaded = await api.uploadFile(room, await openAsBlob(path), {
          name,
          mime: options.mime ?? mimeOf(path),
        })
        if (!options.post) {
          out.print(uploaded, fileLine(uploaded))
          return
        }
        const posted = await api.call('postMessage', {
          params: { id: room },
          body: { body: options.message ?? name, attachments: [uploaded] },
        })
        out.print({ ...uploaded, message: posted.id }, `${fileLine(uploaded)}\nposted ${posted.id}`)
      },
    )

  clientCommand(file, 'get <cid>', 'download a file named in a room you may read', { proof: false })
    .option('-o, --output <path>', 'where to write it (default: the file name, in this directory)')
    .action(async (cid: string, options: ClientOptions & { output?: string }) => {
      const { client: api } = await session(options)
      const res = await api.fetchFile(cid)
      const named = /filename\*=UTF-8''([^;]+)/.exec(res.headers.get('content-disposition') ?? '')?.[1]
      const target = options.output ?? basename(named !== undefined ? decodeURIComponent(named) : cid)
      if (res.body === null) throw new Error('empty answer')
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(target))
      const size = Number(res.headers.get('content-length') ?? 0)
      out.print({ cid, path: target, size }, `${target}  ${size} bytes`)
    })

  clientCommand(file, 'cache', 'files this node fetched from peers, and its limits', { proof: false }).action(
    async (options: ClientOptions) => {
      const { client: api } = await session(options)
      const res = await api.call('fileCache')
      const used = res.cached.reduce((n, f) => n + f.size, 0)
      out.print(
        res,
        [
          `cache ${used}/${res.cacheBytes} bytes, largest file ${res.maxFileBytes} bytes`,
          ...res.cached.map((f) => `  ${f.cid}  ${f.size} bytes`),
        ].join('\n'),
      )
    },
  )
}
