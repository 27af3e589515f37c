/** `mesh init`, `mesh start`, `mesh registry`: the commands that create a mesh or run a server. */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { type Command, Option } from 'commander'
import type { MeshNodeInit } from '../../config.ts'
import { ConflictError, MeshError } from '../../errors.ts'
import { createLogger, type Logger } from '../../log.ts'
import { isStoreLocked } from '../../node/startup-errors.ts'
import type { CliContext } from '../context.ts'
import { EXIT_CODE } from '../format.ts'
import { GatedStdout } from '../gated-stdout.ts'
import { createdText, holdsMesh, initDataDir } from '../init.ts'
import {
  collectMultiaddr,
  dataOption,
  description,
  httpListen,
  httpListenOptions,
  nonNegativeInt,
  positiveInt,
  publicUrl,
} from '../options.ts'

async function init(ctx: CliContext, options: { data: string; name?: string; architectDid?: string }) {
  return initDataDir({
    dataDir: resolve(options.data),
    keystore: ctx.keystore(),
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.architectDid !== undefined ? { architectDid: options.architectDid } : {}),
  })
}

interface Server {
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * Runs a server until SIGTERM or SIGINT: its log lines held until it is ready, then
 * the ready line first; on the signal it stops and the process exits (1 if it failed
 * to stop cleanly). The handlers are in place before the server starts: a signal while it
 * starts stops it once started, and one right after the ready line is never missed (issue
 * 14: a SIGTERM that came before them killed the process without a clean stop).
 */
async function serve<S extends Server>(
  ctx: CliContext,
  create: (logger: Logger) => S,
  readyLine: (server: S) => string,
): Promise<void> {
  const out = new GatedStdout()
  const logger = createLogger({ level: ctx.env.MESH_LOG_LEVEL ?? 'info', destination: out })
  const server = create(logger)
  let started = false
  let stopping = false
  const stop = () => {
    const stopAll = async () => {
      await server.stop()
      logger.flush()
    }
    stopAll().then(
      () => process.exit(EXIT_CODE.ok),
      (err: unknown) => process.exit(ctx.out.shutdownError(err)),
    )
  }
  const handler = () => {
    if (stopping) return
    stopping = true
    if (started) stop()
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
  await server.start()
  started = true
  if (stopping) {
    stop()
    return
  }
  out.open(readyLine(server))
}

export function registerNodeCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx

  cli
    .command('init')
    .description('create a mesh: its key in the data dir, its architect key in the keystore')
    .addOption(dataOption())
    .option('--name <name>', 'mesh name (lowercase letters, digits, dashes)')
    .option('--architect-did <did>', 'enrol an existing human did:key as architect')
    .action(async (options: { data: string; name?: string; architectDid?: string }) => {
      const created = await init(ctx, options)
      const { key, info, architectKeyPath } = created
      out.print(
        {
          did: key.did,
          name: info.name,
          architectDid: info.architectDid,
          architectKeyPath: architectKeyPath ?? null,
        },
        createdText(resolve(options.data), created),
      )
    })

  httpListenOptions(
    cli
      .command('start')
      .description('run a mesh node (creates the mesh on first start)')
      .addOption(dataOption())
      .option('--name <name>', 'mesh name, when this start creates the mesh'),
    {
      address: 'HTTP API address',
      defaultAddress: '127.0.0.1:7700',
      server: 'the HTTP API',
      calledAs: 'the API',
    },
  )
    .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collectMultiaddr)
    // issue 14: deployment
    .option(
      '--announce <multiaddr>',
      'libp2p address to announce instead of the listen ones, e.g. /dns4/HOST/tcp/4001 (repeatable)',
      collectMultiaddr,
    )
    .addOption(
      new Option(
        '--public-url <url>',
        'the URL others reach the HTTP API by (behind a reverse proxy)',
      ).argParser(publicUrl),
    )
    // reachable by URL (SPEC §10)
    .addOption(
      new Option('--description <text>', 'a line about the mesh (manifest, DHT record, registry)').argParser(
        description,
      ),
    )
    .option('--registry <url>', 'registry to bootstrap from and heartbeat to')
    .option('--bootstrap <multiaddr>', 'mesh to join the DHT through (repeatable)', collectMultiaddr)
    .option('--serve-registry', 'also serve a registry from this node')
    .option('--public', 'list this mesh in the registry and the DHT directory')
    .addOption(
      new Option('--discovery-interval <ms>', 'DHT republish/lookup interval').argParser(positiveInt),
    )
    .addOption(new Option('--heartbeat-interval <ms>', 'registry heartbeat interval').argParser(positiveInt))
    .addOption(
      new Option('--retry-base <ms>', 'first retry delay of undelivered federation messages').argParser(
        positiveInt,
      ),
    )
    .addOption(new Option('--retry-max <ms>', 'retry delay cap (default 60000)').argParser(positiveInt))
    .addOption(
      new Option('--send-timeout <ms>', 'one delivery attempt at most (default 10000)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option('--probe-interval <ms>', 'how often accepted peers are pinged (0 = never)').argParser(
        nonNegativeInt,
      ),
    )
    .addOption(
      new Option(
        '--sync-interval <ms>',
        'how often room links to peer meshes are checked (default 2000)',
      ).argParser(positiveInt),
    )
    // accountability across meshes (SPEC §11)
    .addOption(
      new Option(
        '--audit-interval <ms>',
        'how often audit tree heads are swapped with peer meshes (default 15000; 0 = never)',
      ).argParser(nonNegativeInt),
    )
    // reachability (SPEC §10): relays
    .option('--relay', 'serve as a circuit relay for meshes that cannot be dialled')
    .addOption(
      new Option('--relay-reservations <n>', 'relay: reservations held at once (default 64)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option('--relay-circuit-ms <ms>', 'relay: one circuit open at most (default 1800000)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option(
        '--relay-circuit-bytes <n>',
        'relay: bytes one circuit carries (default 67108864)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option('--relay-per-peer <n>', 'relay: circuits in flight from one peer (default 8)').argParser(
        positiveInt,
      ),
    )
    .option(
      '--relay-via <multiaddr>',
      'relay (…/p2p/<peer id>) to take a reservation on and be reached through (repeatable)',
      collectMultiaddr,
    )
    // the model proxy (SPEC §13)
    .option(
      '--model-upstream <url>',
      'OpenAI-compatible upstream of the model proxy (/v1/chat/completions), e.g. https://api.openai.com/v1; its key from MESH_MODEL_API_KEY',
    )
    .option(
      '--model-quotas <file>',
      'the model proxy’s quota policy, JSON: {tiers, tierTotals, principals, reserveTokens} (defaults per tier otherwise)',
    )
    // store and forward (SPEC §10): /mesh/mailbox/1.0.0
    .addOption(
      new Option(
        '--mailbox-ttl <ms>',
        'relay: how long a mailbox item is kept (default 604800000)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option('--mailbox-items <n>', 'relay: items kept for one mesh (default 1000)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option('--mailbox-bytes <n>', 'relay: bytes kept for one mesh (default 16777216)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option('--mailbox-meshes <n>', 'relay: meshes it keeps a mailbox for (default 1000)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option(
        '--mailbox-total-bytes <n>',
        'relay: bytes kept for all mailboxes together (default 1073741824)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--mailbox-prune <ms>',
        'relay: how often expired items are dropped (default 60000)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--mailbox-poll <ms>',
        'how often this mesh asks its relays for waiting items (default 60000; 0 = at start and reconnect only)',
      ).argParser(nonNegativeInt),
    )
    // coordination fees (SPEC §10)
    .addOption(
      new Option(
        '--relay-free-bytes <n>',
        'relay: bytes a mesh may leave unreceipted before it is cut off (default 8388608)',
      ).argParser(nonNegativeInt),
    )
    .option('--no-relay-receipts', 'sign no receipts for the relays this mesh uses (they may cut it off)')
    // files in rooms (issue 18)
    .addOption(
      new Option('--max-file-bytes <n>', 'largest file uploaded or fetched (default 26214400)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option(
        '--file-cache-bytes <n>',
        'disk for files fetched from peers, least recently used evicted (default 536870912)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--file-serve-rate <bytes/s>',
        'most bytes per second one file transfer to a peer is served at',
      ).argParser(positiveInt),
    )
    // connection budget (issue 15)
    .addOption(
      new Option(
        '--max-peer-connections <n>',
        'libp2p connections to other meshes at most; the DHT routing table is sized from it (default 300)',
      ).argParser(positiveInt),
    )
    .action(async (options) => {
      // Issue 15 (cold start): the node's modules load here, for `mesh start` only (every
      // other command runs without them), while the data dir is read or created.
      const meshNode = import('../../mesh-node.ts')
      // awaited below; a failure before then (a bad --model-quotas) must not leave it unhandled
      meshNode.catch(() => {})
      // the model proxy (SPEC §13): its quota policy file, checked when the node starts
      const modelQuotas =
        options.modelQuotas === undefined
          ? undefined
          : await jsonFile(options.modelQuotas as string, '--model-quotas')
      const dataDir = resolve(options.data as string)
      // A first start creates the mesh, and says what it created and where (stderr: the
      // ready line is the first line on stdout).
      if (!(await holdsMesh(dataDir))) {
        const created = await init(ctx, { data: dataDir, ...(options.name ? { name: options.name } : {}) })
        out.notice(createdText(dataDir, created))
      }
      const { createMeshNode } = await meshNode
      await serve(
        ctx,
        (logger) =>
          createMeshNode({
            dataDir,
            http: httpListen(options),
            listen: (options.listen as string[] | undefined) ?? ['/ip4/127.0.0.1/tcp/0'],
            ...(options.announce !== undefined ? { announce: options.announce as string[] } : {}),
            ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl as string } : {}),
            ...(options.description !== undefined ? { description: options.description as string } : {}),
            bootstrap: (options.bootstrap as string[] | undefined) ?? [],
            serveRegistry: options.serveRegistry === true,
            public: options.public === true,
            ...(options.registry ? { registryUrl: (options.registry as string).replace(/\/$/, '') } : {}),
            ...(options.discoveryInterval
              ? { discovery: { intervalMs: options.discoveryInterval as number } }
              : {}),
            ...(options.heartbeatInterval
              ? { heartbeat: { intervalMs: options.heartbeatInterval as number } }
              : {}),
            connections: {
              ...(options.retryBase !== undefined ? { retryBaseMs: options.retryBase as number } : {}),
              ...(options.retryMax !== undefined ? { retryMaxMs: options.retryMax as number } : {}),
              ...(options.sendTimeout !== undefined ? { sendTimeoutMs: options.sendTimeout as number } : {}),
              ...(options.probeInterval !== undefined
                ? { probeIntervalMs: options.probeInterval as number }
                : {}),
            },
            ...(options.syncInterval !== undefined
              ? { rooms: { syncIntervalMs: options.syncInterval as number } }
              : {}),
            // accountability across meshes (SPEC §11)
            ...(options.auditInterval !== undefined
              ? { auditProtocol: { gossipIntervalMs: options.auditInterval as number } }
              : {}),
            // reachability (SPEC §10): relays
            ...relayOption(options),
            ...(options.relayVia !== undefined ? { relayVia: options.relayVia as string[] } : {}),
            // the model proxy (SPEC §13)
            ...(options.modelUpstream !== undefined
              ? {
                  model: {
                    upstream: options.modelUpstream as string,
                    ...(modelQuotas !== undefined ? { quotas: modelQuotas } : {}),
                    ...(ctx.env.MESH_MODEL_API_KEY !== undefined
                      ? { apiKey: ctx.env.MESH_MODEL_API_KEY }
                      : {}),
                  },
                }
              : {}),
            ...mailboxOption(options), // store and forward (SPEC §10)
            ...feesOption(options), // coordination fees (SPEC §10)
            ...fileOptions(options), // files in rooms (issue 18)
            // connection budget (issue 15)
            ...(options.maxPeerConnections !== undefined
              ? { maxPeerConnections: options.maxPeerConnections as number }
              : {}),
            logger,
          }),
        (node) =>
          `ready http=${node.httpUrl} did=${node.did} peer=${node.peerId} listen=${node.multiaddrs().join(',')}`,
      )
    })

  httpListenOptions(
    cli
      .command('registry')
      .description('run a standalone registry (public mesh list and heartbeats)')
      .addOption(new Option('--data <dir>', 'data directory').default('./.mesh-registry')),
    {
      address: 'HTTP address',
      defaultAddress: '127.0.0.1:7800',
      server: 'the registry',
      calledAs: 'the registry',
    },
  )
    .addOption(new Option('--heartbeat-interval <ms>', 'expected heartbeat interval').argParser(positiveInt))
    .addOption(
      new Option('--pow-bits <n>', 'admission stamp a new mesh must bring, 0-32 (default 20)').argParser(
        nonNegativeInt,
      ),
    )
    .action(async (options) => {
      const dataDir = resolve(options.data as string)
      // Issue 15 (cold start): the registry's modules load for `mesh registry` only.
      const { RegistryServer } = await import('../../registry-server.ts')
      await serve(
        ctx,
        (logger) =>
          new RegistryServer({
            dataDir,
            http: httpListen(options),
            ...(options.heartbeatInterval
              ? { heartbeatIntervalMs: options.heartbeatInterval as number }
              : {}),
            ...(options.powBits !== undefined ? { limits: { powBits: options.powBits as number } } : {}),
            logger,
          }),
        (server) => `ready http=${server.url} registry`,
      ).catch((err: unknown) => {
        // issue 14: another registry holds this data dir
        throw isStoreLocked(err)
          ? new ConflictError(`${dataDir} is in use by another process (its store is locked)`, { dataDir })
          : err
      })
    })
}

// reachability (SPEC §10): relays
/** `--relay` and its limits (any limit implies `--relay`). */
function relayOption(options: Record<string, unknown>): Pick<MeshNodeInit, 'relay'> {
  const limits: Exclude<MeshNodeInit['relay'], boolean | undefined> = {
    ...(options.relayReservations !== undefined
      ? { maxReservations: options.relayReservations as number }
      : {}),
    ...(options.relayCircuitMs !== undefined ? { circuitDurationMs: options.relayCircuitMs as number } : {}),
    ...(options.relayCircuitBytes !== undefined ? { circuitBytes: options.relayCircuitBytes as number } : {}),
    ...(options.relayPerPeer !== undefined ? { maxCircuitsPerPeer: options.relayPerPeer as number } : {}),
  }
  if (Object.keys(limits).length > 0) return { relay: limits }
  return options.relay === true ? { relay: true } : {}
}

// the model proxy (SPEC §13)
/** A JSON file's content, or MESH_BAD_REQUEST naming the option that gave it. */
async function jsonFile(path: string, option: string): Promise<QuotaOverridesInput> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new MeshError('MESH_BAD_REQUEST', `${option}: cannot read ${path}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text) as QuotaOverridesInput
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', `${option}: ${path} is not JSON`)
  }
}

type QuotaOverridesInput = NonNullable<NonNullable<MeshNodeInit['model']>['quotas']>

// store and forward (SPEC §10)
/** `--mailbox-…`: the relay's mailbox limits and this mesh's poll interval. */
function mailboxOption(options: Record<string, unknown>): Pick<MeshNodeInit, 'mailbox'> {
  const flags = {
    ttlMs: options.mailboxTtl,
    maxItems: options.mailboxItems,
    maxBytes: options.mailboxBytes,
    maxMailboxes: options.mailboxMeshes,
    maxTotalBytes: options.mailboxTotalBytes,
    pruneIntervalMs: options.mailboxPrune,
    pollIntervalMs: options.mailboxPoll,
  }
  const set = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as NonNullable<
    MeshNodeInit['mailbox']
  >
  return Object.keys(set).length > 0 ? { mailbox: set } : {}
}

// coordination fees (SPEC §10)
/** `--relay-free-bytes` and `--no-relay-receipts`. */
function feesOption(options: Record<string, unknown>): Pick<MeshNodeInit, 'fees'> {
  const fees: NonNullable<MeshNodeInit['fees']> = {
    ...(options.relayFreeBytes !== undefined ? { freeBytes: options.relayFreeBytes as number } : {}),
    ...(options.relayReceipts === false ? { signReceipts: false } : {}),
  }
  return Object.keys(fees).length > 0 ? { fees } : {}
}

// files in rooms (issue 18)
function fileOptions(options: Record<string, unknown>): { files?: NonNullable<MeshNodeInit['files']> } {
  const files = {
    ...(options.maxFileBytes !== undefined ? { maxFileBytes: options.maxFileBytes as number } : {}),
    ...(options.fileCacheBytes !== undefined ? { cacheBytes: options.fileCacheBytes as number } : {}),
    ...(options.fileServeRate !== undefined ? { serveBytesPerSecond: options.fileServeRate as number } : {}),
  }
  return Object.keys(files).length > 0 ? { files } : {}
}
