/**
 * A tiny example agent: a separate process with its own Ed25519 key that signs in to
 * its mesh as an enrolled agent, joins one room and answers every mention of it.
 *
 *   node examples/mention-agent/agent.ts --node http://127.0.0.1:7700 --room <id> --key <file>
 *
 * It uses only the public face of a node: the typed HTTP client (src/api) to sign in,
 * join, post and take y-websocket tickets, and the stock `y-websocket` provider to hear
 * the room change. It reads what arrives and writes only through HTTP, so everything
 * it says passes the node's checks like anyone's.
 *
 * The key file is the keystore's format (`mesh key new`); a missing one is created
 * (mode 0600). Until its did is enrolled (`mesh member add <did> --kind agent --name
 * bot`), its sign-in is refused and it exits 1 with the code. It answers each mention
 * once, also those made while it was stopped (a reply of its own marks one answered).
 * Output, one line each: `key did=… new=true|false`, `ready did=… name=@… room=…`,
 * `answered <message id> reply=<id>`, `closed <ws close code> <reason>` (it then connects
 * again with a fresh ticket), `error <MESH_…> <message>`, `stopped`.
 * SIGTERM or SIGINT: it closes its socket, signs out and exits 0.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { ApiClient, ApiError, type ApiSigner } from '../../src/api/client.ts'
import { didFromPublicKey, pkcs8FromSeed } from '../../src/api/did-key.ts'
import { isKnownKeyFormat, type KeyFile, keyFileOf } from '../../src/api/key-file.ts'
import type { MemberEntry, MessageEntry, RedactionEntry } from '../../src/api/room-entries.ts'

const say = (line: string) => process.stdout.write(`${line}\n`)
/** `error MESH_… <message>`: a refusal from the node, or one of the agent's own. */
const report = (err: unknown) =>
  say(`error ${(err as ApiError).code ?? 'MESH_INTERNAL'} ${(err as Error).message}`)

/** The agent's key from `path`, created there first when there is none. */
async function loadKey(path: string, name: string): Promise<ApiSigner & { created: boolean }> {
  let text: string | undefined
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const created = text === undefined
  let file: Partial<KeyFile> | undefined
  if (text !== undefined) {
    try {
      file = JSON.parse(text) as Partial<KeyFile>
    } catch {
      file = {}
    }
    if (!isKnownKeyFormat(file) || Buffer.from(file.seed, 'base64url').length !== 32)
      throw new ApiError('MESH_BAD_REQUEST', `${path} is not an Ed25519 key file`, 0)
  }
  const seed = file?.seed !== undefined ? Buffer.from(file.seed, 'base64url') : randomBytes(32)
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8FromSeed(seed)), format: 'der', type: 'pkcs8' })
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' })
  const did = didFromPublicKey(Buffer.from(jwk.x as string, 'base64url'))
  if (file?.did !== undefined && file.did !== did)
    throw new ApiError('MESH_BAD_REQUEST', `${path}: its did does not match its seed`, 0)
  // 'human' marks a keystore entry (the format has no other role for a principal's key).
  if (created)
    await writeFile(path, `${JSON.stringify(keyFileOf('human', name, seed.toString('base64url'), did))}\n`, {
      flag: 'wx',
      mode: 0o600,
    })
  return { did, created, sign: (bytes) => sign(null, bytes, privateKey) }
}

/** How the room names `did` of `mesh`: `@local_id` at home, `@local_id:mesh-name` from elsewhere. */
function nameIn(doc: Y.Doc, did: string, mesh: string, ownMesh: string): string {
  for (const m of doc.getMap<MemberEntry>('members').values()) {
    if (m.did === did && m.mesh === mesh)
      return mesh === ownMesh ? `@${m.localId}` : `@${m.localId}:${m.meshName}`
  }
  return did
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      node: { type: 'string', default: 'http://127.0.0.1:7700' },
      room: { type: 'string' },
      key: { type: 'string' },
      name: { type: 'string', default: 'bot' },
    },
  })
  if (values.room === undefined || values.key === undefined)
    throw new ApiError(
      'MESH_BAD_REQUEST',
      'usage: agent.ts --node <url> --room <id> --key <file> [--name bot]',
      0,
    )
  const roomId = values.room
  const key = await loadKey(values.key, values.name)
  say(`key did=${key.did} new=${key.created}`)

  const api = new ApiClient({ baseUrl: values.node })
  await api.signIn(key)
  // Signs in again once if the session ended (expiry, a restart of the node).
  const withSession = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call()
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'MESH_UNAUTHENTICATED') throw err
      await api.signIn(key)
      return call()
    }
  }
  const me = await api.call('joinRoom', { params: { id: roomId } })
  const { ownMesh } = await api.call('getRoom', { params: { id: roomId } })

  const doc = new Y.Doc()
  const messages = doc.getMap<MessageEntry>('messages')
  const answered = new Set<string>()
  let replying = Promise.resolve()

  // A mention is answered when a message of ours replies to it (here, or before a restart).
  const answer = () => {
    const redacted = new Set([...doc.getMap<RedactionEntry>('redactions').values()].map((r) => r.message))
    for (const entry of messages.values())
      if (entry.author === key.did && entry.replyTo) answered.add(entry.replyTo)
    for (const [id, entry] of messages.entries()) {
      if (answered.has(id) || redacted.has(id) || entry.author === key.did) continue
      if (!entry.mentions.includes(key.did)) continue
      answered.add(id)
      const author = nameIn(doc, entry.author, entry.authorMesh, ownMesh)
      const body = `${author} hello, I am ${me.name}, an example agent. You said: ${entry.body}`.slice(
        0,
        2000,
      )
      replying = replying.then(async () => {
        try {
          const reply = await withSession(() =>
            api.call('postMessage', { params: { id: roomId }, body: { body, replyTo: id } }),
          )
          say(`answered ${id} reply=${reply.id}`)
        } catch (err) {
          answered.delete(id)
          report(err)
        }
      })
    }
  }

  // A ticket is single-use, so the provider never reconnects by itself: each (re)connect
  // takes a fresh one, backing off while the node refuses or cannot be reached.
  const provider = new WebsocketProvider(`${values.node.replace(/^http/, 'ws')}/yjs`, roomId, doc, {
    connect: false,
    disableBc: true,
    shouldReconnect: () => false,
  })
  let stopping = false
  let failures = 0
  let retry: ReturnType<typeof setTimeout> | undefined
  const connect = async () => {
    retry = undefined
    try {
      const { ticket } = await withSession(() => api.call('yjsTicket', { params: { id: roomId } }))
      if (stopping) return
      provider.params = { token: ticket }
      provider.connect()
    } catch (err) {
      report(err)
      reconnect()
    }
  }
  const reconnect = () => {
    if (!stopping && retry === undefined) retry = setTimeout(connect, Math.min(30_000, 250 * 2 ** failures++))
  }
  provider.on('closed', ({ code, reason }: { code: number; reason: string }) => {
    say(`closed ${code} ${reason}`)
    reconnect()
  })
  let ready = false
  provider.on('sync', (synced: boolean) => {
    if (!synced) return
    failures = 0
    if (!ready) say(`ready did=${key.did} name=${me.name} room=${roomId}`)
    ready = true
    answer()
  })
  messages.observe(() => {
    if (ready) answer()
  })
  await connect()

  const stop = async () => {
    if (stopping) return
    stopping = true
    clearTimeout(retry)
    provider.destroy()
    doc.destroy()
    await replying
    await api.signOut().catch(report)
    say('stopped')
    process.exit(0)
  }
  process.once('SIGTERM', () => void stop())
  process.once('SIGINT', () => void stop())
}

main(process.argv.slice(2)).catch((err: unknown) => {
  report(err)
  process.exit(1)
})
