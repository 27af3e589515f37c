/** `mesh connect`, `requests`, `connections`, `accept|decline|disconnect|pause|resume`, `peers`: links to other meshes. */
import type { Command } from 'commander'
import { CONNECTION_ACT_ROUTES } from '../../api/connection-acts.ts'
import type { ConnectionView, PeerView } from '../../api/index.ts'
import { HUMAN_ACTS } from '../../auth/index.ts'
import { parseTarget } from '../../identity/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

function connectionLine(c: ConnectionView): string {
  const error = c.lastError === null ? '' : `  last error: ${c.lastError.kind} ${c.lastError.code}`
  return `${c.id}  ${c.direction.padEnd(8)} ${c.status.padEnd(12)} v${c.agreementVersion}  ${(c.peerName ?? '?').padEnd(16)} ${c.peerDid}${error}`
}

function peerLines(p: PeerView): string {
  return (
    `${(p.name ?? '?').padEnd(16)} ${p.state.padEnd(12)} ${p.did}\n` +
    `    key ${p.keyFingerprint}  last seen ${p.lastSeen ?? 'never'}  sent/received 24h ${p.eventsSent24h}/${p.eventsReceived24h}  queued ${p.queued}` +
    (p.lastError ? `\n    last error: ${p.lastError.kind} ${p.lastError.code} ${p.lastError.message}` : '')
  )
}

export function registerConnectionCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)

  clientCommand(
    cli,
    'connect <target>',
    'ask a mesh (did:key, multiaddr ending in /p2p/<id>, or its http(s) URL) to connect',
  )
    .option('--note <text>', 'a note for the other architect')
    .action(async (target: string, options: ClientOptions & { note?: string }) => {
      const { client: api, chainAct } = await session(options)
      // reachable by URL (SPEC §10): the node fetches and verifies the manifest; the act names its did
      const did = /^https?:\/\//i.test(target)
        ? (await api.call('resolveMeshUrl', { query: { url: target } })).did
        : parseTarget(target).did
      const res = await api.call('connect', {
        body: {
          target,
          ucan: await chainAct(HUMAN_ACTS.connect, did),
          ...(options.note !== undefined ? { note: options.note } : {}),
        },
      })
      out.print(res, `connection ${res.id} ${res.status}`)
    })

  clientCommand(cli, 'requests', 'list inbound pending connection requests').action(
    async (options: ClientOptions) => {
      const { client: api } = await session(options)
      const all = await api.call('listConnections')
      const pending = all.filter((c) => c.direction === 'inbound' && c.status === 'pending')
      out.print(
        pending,
        pending.length === 0
          ? 'no pending requests'
          : pending.map((c) => `${connectionLine(c)}${c.note ? `\n    note: ${c.note}` : ''}`).join('\n'),
      )
    },
  )

  clientCommand(cli, 'connections', 'list every connection').action(async (options: ClientOptions) => {
    const { client: api } = await session(options)
    const all = await api.call('listConnections')
    out.print(all, all.length === 0 ? 'no connections' : all.map(connectionLine).join('\n'))
  })

  for (const what of ['accept', 'decline', 'disconnect', 'pause', 'resume'] as const) {
    clientCommand(cli, `${what} <id>`, `${what} a connection (signed by your human key)`).action(
      async (id: string, options: ClientOptions) => {
        const { client: api, chainAct } = await session(options)
        const res = await api.call(CONNECTION_ACT_ROUTES[what], {
          params: { id },
          body: { ucan: await chainAct(HUMAN_ACTS[what], id) },
        })
        out.print(res, `connection ${res.id} ${res.status}`)
      },
    )
  }

  clientCommand(cli, 'peers', 'peer meshes: state, last seen, last error, traffic').action(
    async (options: ClientOptions) => {
      const { client: api } = await session(options)
      const peers = await api.call('listPeers')
      out.print(peers, peers.length === 0 ? 'no peers' : peers.map(peerLines).join('\n'))
    },
  )
}
