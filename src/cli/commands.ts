/**
 * The `mesh` commands: the only place that reads argv and the environment, prints,
 * or exits. Everything it does goes through the node's public API or HTTP API.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { Command, Option } from 'commander'
import type { AuditCheckpoint, AuditPage, AuditVerifyReport } from '../audit/index.ts'
import { roomResourceOf } from '../auth/authority/index.ts'
import { type HttpListenInit, MESH_NODE_VERSION } from '../config.ts'
import {
  type ConnectionView,
  type FederationPolicy,
  HUMAN_ACTS,
  type PeerView,
  parseTarget,
  type RejectedEntry,
} from '../connections/index.ts'
import { ERROR_MEANING, MeshError, type MeshErrorCode, UnavailableError } from '../errors.ts'
import { HumanKeystore } from '../identity/index.ts'
import type { KeyRotationResult } from '../keys/index.ts'
import { createLogger } from '../log.ts'
import { initMesh, meshStore, readMeshInfo } from '../mesh-info.ts'
import { createMeshNode, NODE_ADDRESS_FILE } from '../mesh-node.ts'
import { RegistryServer } from '../registry-server.ts'
import type { RoomSyncStatus, ShareView, TransferProgress } from '../rooms/index.ts'
import type { MeshStore } from '../store/index.ts'
import { registerAuthorityCommands } from './authority-commands.ts'
import { actCapability, chainProofs, invocationToken } from './chains.ts'
import { GatedStdout } from './gated-stdout.ts'
import { HttpClient, signIn } from './http-client.ts'

const env = process.env
const keystore = () => new HumanKeystore(env.MESH_KEYSTORE ?? join(homedir(), '.mesh-keys'))

interface GlobalOptions {
  json?: boolean
}

function print(json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write(json === true ? `${JSON.stringify(value)}\n` : `${human}\n`)
}

function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(value)
  if (match === null) throw new MeshError('MESH_BAD_REQUEST', `--http wants HOST:PORT, got ${value}`)
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: Number(match[2]) }
}

/** --http, --allowed-host, --allowed-origin, --max-connections[-per-ip] as the HTTP listen options. */
function httpListen(options: Record<string, unknown>): HttpListenInit {
  const connections = {
    ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections as number } : {}),
    ...(options.maxConnectionsPerIp !== undefined
      ? { maxConnectionsPerIp: options.maxConnectionsPerIp as number }
      : {}),
  }
  return {
    ...parseHostPort(options.http as string),
    allowedHosts: (options.allowedHost as string[] | undefined) ?? [],
    allowedOrigins: (options.allowedOrigin as string[] | undefined) ?? [],
    connections,
  }
}
const maxConnectionsOption = () =>
  new Option('--max-connections <n>', 'open HTTP connections at most (default 512)').argParser(positiveInt)
const maxConnectionsPerIpOption = () =>
  new Option(
    '--max-connections-per-ip <n>',
    'open HTTP connections from one address at most (default 64; 127.0.0.1 and ::1 exempt)',
  ).argParser(positiveInt)

const collect = (value: string, previous: string[] = []) => [...previous, value]
const nonNegativeInt = (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0)
    throw new MeshError('MESH_BAD_REQUEST', `not a non-negative integer: ${value}`)
  return n
}
const positiveInt = (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0)
    throw new MeshError('MESH_BAD_REQUEST', `not a positive integer: ${value}`)
  return n
}

async function withStore<T>(dataDir: string, fn: (store: MeshStore) => Promise<T>): Promise<T> {
  const store = await meshStore(dataDir)
  await store.open()
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

async function init(options: { data: string; name?: string; architectDid?: string }) {
  const dataDir = resolve(options.data)
  return withStore(dataDir, (store) =>
    initMesh({
      store,
      dataDir,
      name: options.name ?? defaultName(dataDir),
      keystore: keystore(),
      ...(options.architectDid !== undefined ? { architectDid: options.architectDid } : {}),
    }),
  )
}

function defaultName(dataDir: string): string {
  const base = basename(dataDir)
    .replace(/^\.+/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
  return base.length > 0 && base !== 'mesh' ? base.slice(0, 40) : `mesh-${randomBytes(3).toString('hex')}`
}

interface NodeAddress {
  http: string
  architectKeyName?: string | null
}

/** What a running node wrote in its data dir (its LevelDB is locked while it runs). */
async function nodeAddress(data: string): Promise<NodeAddress> {
  const file = join(resolve(data), NODE_ADDRESS_FILE)
  try {
    return JSON.parse(await readFile(file, 'utf8')) as NodeAddress
  } catch {
    throw new UnavailableError(`no running node found for ${data} (start it, or pass --api URL)`)
  }
}

/** Where a client command finds its node: --api, or the address file a running node wrote. */
async function apiUrl(options: { api?: string; data: string }): Promise<string> {
  if (options.api !== undefined) return options.api.replace(/\/$/, '')
  return (await nodeAddress(options.data)).http
}

/** The human key a client command signs with: --as NAME, else the architect's key from init. */
async function signingKeyName(options: { as?: string; data: string }): Promise<string> {
  if (options.as !== undefined) return options.as
  const name = (await nodeAddress(options.data).catch(() => undefined))?.architectKeyName
  if (typeof name !== 'string') {
    throw new MeshError('MESH_BAD_REQUEST', 'no default signing key for this data dir; pass --as NAME')
  }
  return name
}

interface ClientOptions {
  data: string
  api?: string
  as?: string
  /** Delegations (tokens or @files) that prove the signer's rights; default the root delegation. */
  proof?: string[]
}

/** A session at the node, opened with the human key the command signs with. */
async function humanSession(options: ClientOptions) {
  const key = await keystore().load(await signingKeyName(options))
  const client = await signIn(await apiUrl(options), key)
  /**
   * A UCAN chain act on this mesh: signed by the human key, with `--proof` or the root
   * delegation; on `resource` (default the mesh itself, e.g. a room's resource).
   */
  const chainAct = async (can: string, subject?: string, resource?: string) =>
    invocationToken(
      key,
      client.meshDid as string,
      {
        ...actCapability(client.meshDid as string, can, subject),
        ...(resource !== undefined ? { with: resource } : {}),
      },
      await chainProofs(client, key, options.proof),
    )
  return { key, client, chainAct }
}

function connectionLine(c: ConnectionView): string {
  const error = c.lastError === null ? '' : `  last error: ${c.lastError.kind} ${c.lastError.code}`
  return `${c.id}  ${c.direction.padEnd(8)} ${c.status.padEnd(12)} v${c.agreementVersion}  ${(c.peerName ?? '?').padEnd(16)} ${c.peerDid}${error}`
}

function program(): Command {
  const cli = new Command('mesh')
    .description('The Mesh node: sovereign meshes of people, agents and rooms, federated over libp2p')
    .version(MESH_NODE_VERSION)
    .option('--json', 'print JSON instead of text')
    .showHelpAfterError()
  const globals = () => cli.opts<GlobalOptions>()
  const dataOption = () => new Option('--data <dir>', 'data directory').default('./.mesh')
  const apiOption = () => new Option('--api <url>', 'HTTP API of the node (default: from the data dir)')

  cli
    .command('init')
    .description('create a mesh: its key in the data dir, its architect key in the keystore')
    .addOption(dataOption())
    .option('--name <name>', 'mesh name (lowercase letters, digits, dashes)')
    .option('--architect-did <did>', 'enrol an existing human did:key as architect')
    .action(async (options: { data: string; name?: string; architectDid?: string }) => {
      const { key, info, architectKeyPath } = await init(options)
      print(
        globals().json,
        {
          did: key.did,
          name: info.name,
          architectDid: info.architectDid,
          architectKeyPath: architectKeyPath ?? null,
        },
        [
          `mesh ${info.name} created`,
          `  did:        ${key.did}`,
          `  architect:  ${info.architectDid}`,
          ...(architectKeyPath !== undefined ? [`  architect key: ${architectKeyPath} (keep it safe)`] : []),
        ].join('\n'),
      )
    })

  cli
    .command('start')
    .description('run a mesh node (creates the mesh on first start)')
    .addOption(dataOption())
    .option('--name <name>', 'mesh name, when this start creates the mesh')
    .option('--http <host:port>', 'HTTP API address', '127.0.0.1:7700')
    .addOption(maxConnectionsOption())
    .addOption(maxConnectionsPerIpOption())
    .option('--allowed-host <name>', 'another Host name the HTTP API answers to (repeatable)', collect)
    .option(
      '--allowed-origin <origin>',
      'another origin browsers may call the API from (repeatable)',
      collect,
    )
    .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collect)
    .option('--registry <url>', 'registry to bootstrap from and heartbeat to')
    .option('--bootstrap <multiaddr>', 'mesh to join the DHT through (repeatable)', collect)
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
    .action(async (options) => {
      const dataDir = resolve(options.data as string)
      const exists = await withStore(dataDir, readMeshInfo)
      if (exists === undefined) await init({ data: dataDir, ...(options.name ? { name: options.name } : {}) })
      const out = new GatedStdout()
      const logger = createLogger({ level: env.MESH_LOG_LEVEL ?? 'info', destination: out })
      const node = createMeshNode({
        dataDir,
        http: httpListen(options),
        listen: (options.listen as string[] | undefined) ?? ['/ip4/127.0.0.1/tcp/0'],
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
        logger,
      })
      await node.start()
      out.open(
        `ready http=${node.httpUrl} did=${node.did} peer=${node.peerId} listen=${node.multiaddrs().join(',')}`,
      )
      onShutdown(async () => {
        await node.stop()
        logger.flush()
      })
    })

  cli
    .command('registry')
    .description('run a standalone registry (public mesh list and heartbeats)')
    .addOption(new Option('--data <dir>', 'data directory').default('./.mesh-registry'))
    .option('--http <host:port>', 'HTTP address', '127.0.0.1:7800')
    .addOption(maxConnectionsOption())
    .addOption(maxConnectionsPerIpOption())
    .option('--allowed-host <name>', 'another Host name the registry answers to (repeatable)', collect)
    .option(
      '--allowed-origin <origin>',
      'another origin browsers may call the registry from (repeatable)',
      collect,
    )
    .addOption(new Option('--heartbeat-interval <ms>', 'expected heartbeat interval').argParser(positiveInt))
    .addOption(
      new Option('--pow-bits <n>', 'admission stamp a new mesh must bring, 0-32 (default 20)').argParser(
        nonNegativeInt,
      ),
    )
    .action(async (options) => {
      const out = new GatedStdout()
      const logger = createLogger({ level: env.MESH_LOG_LEVEL ?? 'info', destination: out })
      const server = new RegistryServer({
        dataDir: resolve(options.data as string),
        http: httpListen(options),
        ...(options.heartbeatInterval ? { heartbeatIntervalMs: options.heartbeatInterval as number } : {}),
        ...(options.powBits !== undefined ? { limits: { powBits: options.powBits as number } } : {}),
        logger,
      })
      await server.start()
      out.open(`ready http=${server.url} registry`)
      onShutdown(async () => {
        await server.stop()
        logger.flush()
      })
    })

  cli
    .command('status')
    .description("show a running node's identity, addresses and what it has discovered")
    .addOption(dataOption())
    .addOption(apiOption())
    .action(async (options: { data: string; api?: string }) => {
      const client = new HttpClient(await apiUrl(options))
      const health = await client.get<{ did: string; peerId: string; multiaddrs: string[]; version: string }>(
        '/api/health',
      )
      const list = await client.get<{ meshes: Array<{ name: string; did: string; status: string }> }>(
        '/api/meshes/public?limit=100',
      )
      print(
        globals().json,
        { ...health, meshes: list.meshes },
        [
          `did:     ${health.did}`,
          `peer:    ${health.peerId}`,
          `version: ${health.version}`,
          `listen:  ${health.multiaddrs.join(' ')}`,
          `meshes:  ${list.meshes.length} known`,
          ...list.meshes.map((m) => `  ${m.status.padEnd(8)} ${m.name.padEnd(20)} ${m.did}`),
        ].join('\n'),
      )
    })

  cli
    .command('whoami')
    .description('sign in to a node with a human key and show the session')
    .addOption(dataOption())
    .addOption(apiOption())
    .option('--as <name>', 'keystore key to sign with (default: the architect)')
    .action(async (options: { data: string; api?: string; as?: string }) => {
      const key = await keystore().load(await signingKeyName(options))
      const client = await signIn(await apiUrl(options), key)
      const me = await client.get<{ did: string; role: string }>('/api/me')
      print(globals().json, me, `${me.did} (${me.role})`)
    })

  const keyCommand = cli
    .command('key')
    .description('human keys in the keystore ($MESH_KEYSTORE, ~/.mesh-keys)')
  keyCommand
    .command('new <name>')
    .description('create a human key in the keystore')
    .action(async (name: string) => {
      const key = await keystore().create(name)
      print(globals().json, { name, did: key.did, path: keystore().pathOf(name) }, `${name} ${key.did}`)
    })
  keyCommand
    .command('rotate')
    .description("rotate the running mesh's key (your signed act); peers, registry and DHT are told")
    .addOption(dataOption())
    .addOption(apiOption())
    .option('--as <name>', 'keystore key to sign with (default: the architect)')
    .action(async (options: ClientOptions) => {
      const { client: api, chainAct } = await humanSession(options)
      const res = await api.post<KeyRotationResult>('/api/keys/rotate', {
        ucan: await chainAct(HUMAN_ACTS.rotateKey),
      })
      print(
        globals().json,
        res,
        [
          `mesh key rotated (rotation ${res.seq})`,
          `  identity: ${res.identity}`,
          `  previous: ${res.previous}`,
          `  current:  ${res.did}`,
          `  peer:     ${res.peerId}`,
          `  announced to ${res.announcedTo.length} peer(s)`,
        ].join('\n'),
      )
    })

  const client = (name: string, description: string) =>
    cli
      .command(name)
      .description(description)
      .addOption(dataOption())
      .addOption(apiOption())
      .option('--as <name>', 'keystore key to sign with (default: the architect)')
      .option('--proof <token>', 'a delegation (token or @file) proving your rights (repeatable)', collect)

  client('connect <target>', 'ask a mesh (did:key, or multiaddr ending in /p2p/<id>) to connect')
    .option('--note <text>', 'a note for the other architect')
    .action(async (target: string, options: ClientOptions & { note?: string }) => {
      const { client: api, chainAct } = await humanSession(options)
      const res = await api.post<{ id: string; status: string }>('/api/connections', {
        target,
        ucan: await chainAct(HUMAN_ACTS.connect, parseTarget(target).did),
        ...(options.note !== undefined ? { note: options.note } : {}),
      })
      print(globals().json, res, `connection ${res.id} ${res.status}`)
    })

  client('requests', 'list inbound pending connection requests').action(async (options: ClientOptions) => {
    const { client: api } = await humanSession(options)
    const all = await api.get<ConnectionView[]>('/api/connections')
    const pending = all.filter((c) => c.direction === 'inbound' && c.status === 'pending')
    print(
      globals().json,
      pending,
      pending.length === 0
        ? 'no pending requests'
        : pending.map((c) => `${connectionLine(c)}${c.note ? `\n    note: ${c.note}` : ''}`).join('\n'),
    )
  })

  client('connections', 'list every connection').action(async (options: ClientOptions) => {
    const { client: api } = await humanSession(options)
    const all = await api.get<ConnectionView[]>('/api/connections')
    print(globals().json, all, all.length === 0 ? 'no connections' : all.map(connectionLine).join('\n'))
  })

  for (const what of ['accept', 'decline', 'disconnect'] as const) {
    client(`${what} <id>`, `${what} a connection (signed by your human key)`).action(
      async (id: string, options: ClientOptions) => {
        const { client: api, chainAct } = await humanSession(options)
        const res = await api.post<{ id: string; status: string }>(
          `/api/connections/${encodeURIComponent(id)}/${what}`,
          {
            ucan: await chainAct(HUMAN_ACTS[what], id),
          },
        )
        print(globals().json, res, `connection ${res.id} ${res.status}`)
      },
    )
  }

  client('peers', 'peer meshes: state, last seen, last error, traffic').action(
    async (options: ClientOptions) => {
      const { client: api } = await humanSession(options)
      const peers = await api.get<PeerView[]>('/api/federation/peers')
      print(
        globals().json,
        peers,
        peers.length === 0
          ? 'no peers'
          : peers
              .map(
                (p) =>
                  `${(p.name ?? '?').padEnd(16)} ${p.state.padEnd(12)} ${p.did}\n` +
                  `    key ${p.keyFingerprint}  last seen ${p.lastSeen ?? 'never'}  sent/received 24h ${p.eventsSent24h}/${p.eventsReceived24h}  queued ${p.queued}` +
                  (p.lastError
                    ? `\n    last error: ${p.lastError.kind} ${p.lastError.code} ${p.lastError.message}`
                    : ''),
              )
              .join('\n'),
      )
    },
  )

  client('policy', 'show or change the federation policy')
    .addOption(
      new Option('--mode <mode>', 'open | allowlist | closed').choices(['open', 'allowlist', 'closed']),
    )
    .option('--allow <did>', 'add to the allow list (repeatable)', collect)
    .option('--disallow <did>', 'remove from the allow list (repeatable)', collect)
    .option('--deny <did>', 'add to the deny list (repeatable)', collect)
    .option('--undeny <did>', 'remove from the deny list (repeatable)', collect)
    .addOption(
      new Option('--auto-accept <bool>', 'accept requests that pass the policy').choices(['true', 'false']),
    )
    .addOption(new Option('--max-foreign-participants <n>', 'per room').argParser(nonNegativeInt))
    .addOption(new Option('--max-backfill <n>', 'events per backfill request').argParser(nonNegativeInt))
    .action(
      async (
        options: ClientOptions & {
          mode?: FederationPolicy['mode']
          allow?: string[]
          disallow?: string[]
          deny?: string[]
          undeny?: string[]
          autoAccept?: string
          maxForeignParticipants?: number
          maxBackfill?: number
        },
      ) => {
        const { client: api } = await humanSession(options)
        let policy = await api.get<FederationPolicy>('/api/federation/policy')
        const edit = (list: string[], add: string[] = [], remove: string[] = []) =>
          [...new Set([...list, ...add])].filter((d) => !remove.includes(d))
        const changed =
          options.mode !== undefined ||
          options.allow !== undefined ||
          options.disallow !== undefined ||
          options.deny !== undefined ||
          options.undeny !== undefined ||
          options.autoAccept !== undefined ||
          options.maxForeignParticipants !== undefined ||
          options.maxBackfill !== undefined
        if (changed) {
          policy = await api.put<FederationPolicy>('/api/federation/policy', {
            ...policy,
            ...(options.mode !== undefined ? { mode: options.mode } : {}),
            allow: edit(policy.allow, options.allow, options.disallow),
            deny: edit(policy.deny, options.deny, options.undeny),
            ...(options.autoAccept !== undefined ? { autoAccept: options.autoAccept === 'true' } : {}),
            ...(options.maxForeignParticipants !== undefined
              ? { maxForeignParticipantsPerRoom: options.maxForeignParticipants }
              : {}),
            ...(options.maxBackfill !== undefined
              ? { maxBackfillEventsPerRequest: options.maxBackfill }
              : {}),
          })
        }
        print(
          globals().json,
          policy,
          [
            `mode:         ${policy.mode}`,
            `auto-accept:  ${policy.autoAccept}`,
            `allow:        ${policy.allow.join(' ') || '-'}`,
            `deny:         ${policy.deny.join(' ') || '-'}`,
            `max foreign participants per room: ${policy.maxForeignParticipantsPerRoom}`,
            `max backfill events per request:   ${policy.maxBackfillEventsPerRequest}`,
          ].join('\n'),
        )
      },
    )

  client('audit', 'show the audit log, or verify its hash chain and signatures')
    .option('--verify', 'verify the whole log')
    .option(
      '--checkpoint [file-or-json]',
      'alone: print the log’s current signed checkpoint (JSON, to keep off the node); ' +
        'with --verify: also check that the log extends this saved checkpoint',
    )
    .option('--action <prefix>', 'only rows whose action starts with this')
    .addOption(new Option('--limit <n>', 'rows (1–500)').argParser(positiveInt).default(100))
    .action(async (options: AuditOptions) => {
      const { client: api } = await humanSession(options)
      if (options.checkpoint === true && options.verify !== true) {
        // Always JSON: it is meant to be saved (`mesh audit --checkpoint > checkpoint.json`).
        process.stdout.write(`${JSON.stringify(await api.get<AuditCheckpoint>('/api/audit/checkpoint'))}\n`)
        return
      }
      if (options.verify === true) {
        if (options.checkpoint === true) {
          throw new MeshError('MESH_BAD_REQUEST', '--verify --checkpoint wants a checkpoint file or its JSON')
        }
        const saved = options.checkpoint === undefined ? undefined : await readCheckpoint(options.checkpoint)
        const report = await api.get<AuditVerifyReport>(
          saved === undefined
            ? '/api/audit/verify'
            : `/api/audit/verify?checkpoint=${Buffer.from(saved).toString('base64url')}`,
        )
        print(
          globals().json,
          report,
          report.ok
            ? `audit log ok: ${report.count} rows, head ${report.head?.seq ?? 0} ${report.head?.hash ?? ''}`
            : [
                `audit log NOT ok (${report.count} rows):`,
                ...report.problems.map((p) => `  #${p.seq} ${p.kind}: ${p.message}`),
              ].join('\n'),
        )
        if (!report.ok) process.exitCode = 1
        return
      }
      const query = new URLSearchParams({ limit: String(options.limit) })
      if (options.action !== undefined) query.set('action', options.action)
      const page = await api.get<AuditPage>(`/api/audit?${query}`)
      print(
        globals().json,
        page,
        page.entries
          .map((e) => `${String(e.seq).padStart(5)} ${e.ts} ${e.action} ${e.subject ?? ''} ${e.actor ?? ''}`)
          .join('\n') || 'empty audit log',
      )
    })

  client('rejected', 'refused federation messages and requests, newest first')
    .option('--code <code>', 'only this MESH_… code')
    .action(async (options: ClientOptions & { code?: string }) => {
      const { client: api } = await humanSession(options)
      const page = await api.get<{ entries: RejectedEntry[] }>(
        `/api/federation/rejected${options.code ? `?code=${encodeURIComponent(options.code)}` : ''}`,
      )
      print(
        globals().json,
        page,
        page.entries
          .map((e) => `${e.at} ${e.code.padEnd(24)} ${e.kind.padEnd(18)} ${e.peer ?? '-'} ${e.reason}`)
          .join('\n') || 'nothing refused',
      )
    })

  registerAuthorityCommands(cli, {
    client,
    globals,
    print,
    humanSession,
    signingKey: async (options) => keystore().load(await signingKeyName(options)),
  })
  registerRoomCommands(cli, client, globals)

  cli
    .command('errors')
    .description('list every MESH_… error code and what it means')
    .action(() => {
      const rows = Object.entries(ERROR_MEANING) as Array<[MeshErrorCode, string]>
      print(
        globals().json,
        Object.fromEntries(rows),
        rows.map(([code, meaning]) => `${code.padEnd(26)} ${meaning}`).join('\n'),
      )
    })
  return cli
}

type AuditOptions = ClientOptions & {
  verify?: boolean
  checkpoint?: string | true
  action?: string
  limit: number
}

/** A saved checkpoint given as its JSON text or as a file holding it; returned as compact JSON. */
async function readCheckpoint(value: string): Promise<string> {
  let text = value
  if (!value.trimStart().startsWith('{')) {
    try {
      text = await readFile(value, 'utf8')
    } catch (err) {
      throw new MeshError(
        'MESH_BAD_REQUEST',
        `cannot read the checkpoint file ${value}: ${(err as Error).message}`,
      )
    }
  }
  try {
    return JSON.stringify(JSON.parse(text))
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', 'the checkpoint is not JSON')
  }
}

// ---------------------------------------------------------------- rooms

interface RoomView {
  id: string
  name: string
  topic: string
  homeMesh: string
  federated: boolean
}

interface MessageLine {
  id: string
  author: string
  body: string
  ts: number
  redacted?: true
}

function transferLine(label: string, p: TransferProgress): string {
  if (p.startedAt === null) return `${label}: not started`
  const state = p.doneAt !== null ? 'done' : 'in progress'
  return `${label}: ${p.entriesDone}/${p.entries} entries, ${p.chunksDone}/${p.chunks} chunks, ${p.bytesDone}/${p.bytes} bytes (${state})`
}

/** `mesh room create|join|sync`, `mesh rooms`, `mesh share`, `mesh post`, `mesh messages`, `mesh members`, `mesh dm`, `mesh notifications`. */
function registerRoomCommands(
  cli: Command,
  client: (name: string, description: string) => Command,
  globals: () => GlobalOptions,
): void {
  const room = cli.command('room').description('rooms of this mesh')
  const roomClient = (name: string, description: string) =>
    room
      .command(name)
      .description(description)
      .addOption(new Option('--data <dir>', 'data directory').default('./.mesh'))
      .addOption(new Option('--api <url>', 'HTTP API of the node (default: from the data dir)'))
      .option('--as <name>', 'keystore key to sign with (default: the architect)')

  roomClient('create <name>', 'create a room homed at this mesh')
    .option('--topic <text>', 'what the room is about')
    .addOption(
      new Option(
        '--visibility <visibility>',
        'public: every local principal may find and join it; invite: members only',
      )
        .choices(['public', 'invite'])
        .default('public'),
    )
    .action(async (name: string, options: ClientOptions & { topic?: string; visibility: string }) => {
      const { client: api } = await humanSession(options)
      const res = await api.post<RoomView>('/api/rooms', {
        name,
        ...(options.topic !== undefined ? { topic: options.topic } : {}),
        visibility: options.visibility,
      })
      print(globals().json, res, `room ${res.id} ${res.name} created`)
    })

  roomClient('invite <room> <did>', 'add a principal of this mesh to a room (owner or moderator)').action(
    async (id: string, did: string, options: ClientOptions) => {
      const { client: api } = await humanSession(options)
      const res = await api.post<{ name: string; role: string }>(
        `/api/rooms/${encodeURIComponent(id)}/invite`,
        { did },
      )
      print(globals().json, res, `invited ${res.name} (${res.role})`)
    },
  )

  roomClient('join <room>', 'join a room this mesh holds').action(
    async (id: string, options: ClientOptions) => {
      const { client: api } = await humanSession(options)
      const res = await api.post<{ name: string; role: string }>(
        `/api/rooms/${encodeURIComponent(id)}/join`,
        {},
      )
      print(globals().json, res, `joined as ${res.name} (${res.role})`)
    },
  )

  roomClient('sync <room>', 'catch-up progress of a shared room with each peer mesh').action(
    async (id: string, options: ClientOptions) => {
      const { client: api } = await humanSession(options)
      const s = await api.get<RoomSyncStatus>(`/api/rooms/${encodeURIComponent(id)}/sync`)
      print(
        globals().json,
        s,
        [
          `room ${s.room}  ${s.caughtUp ? 'caught up' : 'catching up'}  ${s.messages} messages  state vector ${s.stateVector}`,
          ...(s.peers.length === 0 ? ['  not shared with any mesh'] : []),
          ...s.peers.flatMap((p) => [
            `  ${(p.name ?? '?').padEnd(16)} ${p.direction.padEnd(3)} link ${p.link.padEnd(6)} ${p.caughtUp ? 'caught up' : 'behind'}  ${p.peer}`,
            `    ${transferLine('from peer', p.incoming)}`,
            `    ${transferLine('to peer  ', p.outgoing)}`,
            ...(p.behind !== null
              ? [`    peer lacks ${p.behind.entries} entries (${p.behind.bytes} bytes) we know of`]
              : []),
            ...(p.lastError !== null ? [`    last error: ${p.lastError.code} ${p.lastError.message}`] : []),
          ]),
        ].join('\n'),
      )
    },
  )

  client('rooms', 'list the rooms this mesh holds (🌐 = shared with other meshes)').action(
    async (options: ClientOptions) => {
      const { client: api } = await humanSession(options)
      const { rooms } = await api.get<{ rooms: RoomView[] }>('/api/rooms')
      print(
        globals().json,
        rooms,
        rooms.length === 0
          ? 'no rooms'
          : rooms
              .map((r) => `${r.id}  ${r.federated ? '🌐' : '  '} ${r.name}${r.topic ? ` — ${r.topic}` : ''}`)
              .join('\n'),
      )
    },
  )

  client('share <room> <mesh-did>', 'share a room with a connected mesh (signed by your human key)').action(
    async (id: string, mesh: string, options: ClientOptions) => {
      const { client: api, chainAct } = await humanSession(options)
      const res = await api.post<ShareView>(`/api/rooms/${encodeURIComponent(id)}/share`, {
        mesh,
        ucan: await chainAct(HUMAN_ACTS.roomShare, mesh, roomResourceOf(api.meshDid as string, id)),
      })
      print(globals().json, res, `room ${res.room} shared with ${res.peer}`)
    },
  )

  client('post <room> <text>', 'post a message').action(
    async (id: string, text: string, options: ClientOptions) => {
      const { client: api } = await humanSession(options)
      const res = await api.post<{ id: string }>(`/api/rooms/${encodeURIComponent(id)}/messages`, {
        body: text,
      })
      print(globals().json, res, res.id)
    },
  )

  client('messages <room>', 'read messages, oldest first')
    .option('--after <id>', 'only messages after this one')
    .addOption(new Option('--limit <n>', 'messages (1–200)').argParser(positiveInt).default(50))
    .action(async (id: string, options: ClientOptions & { after?: string; limit: number }) => {
      const { client: api } = await humanSession(options)
      const query = new URLSearchParams({ limit: String(options.limit) })
      if (options.after !== undefined) query.set('after', options.after)
      const page = await api.get<{ messages: MessageLine[]; nextCursor: string | null }>(
        `/api/rooms/${encodeURIComponent(id)}/messages?${query}`,
      )
      print(
        globals().json,
        page,
        [
          ...page.messages.map(
            (m) => `${new Date(m.ts).toISOString()} ${m.author}: ${m.redacted ? '(redacted)' : m.body}`,
          ),
          ...(page.nextCursor !== null ? [`… more after ${page.nextCursor}`] : []),
        ].join('\n') || 'no messages',
      )
    })

  client('members <room>', 'members of a room').action(async (id: string, options: ClientOptions) => {
    const { client: api } = await humanSession(options)
    const { members } = await api.get<{
      members: Array<{ name: string; did: string; role: string; tier: number }>
    }>(`/api/rooms/${encodeURIComponent(id)}/members`)
    print(
      globals().json,
      members,
      members.map((m) => `${m.name.padEnd(32)} ${m.role.padEnd(10)} tier ${m.tier}  ${m.did}`).join('\n'),
    )
  })

  client('dm <did>', 'open a federated DM with a principal of a connected mesh (signed by your human key)')
    .option('--mesh <did>', 'the principal’s mesh (default: found among shared rooms)')
    .action(async (did: string, options: ClientOptions & { mesh?: string }) => {
      const { client: api, chainAct } = await humanSession(options)
      const res = await api.post<ShareView & { name: string }>('/api/me/federated-dms', {
        with: did,
        // A DM's room does not exist yet: the chain is on the mesh, nb.peer = the principal.
        ucan: await chainAct(HUMAN_ACTS.roomShare, did),
        ...(options.mesh !== undefined ? { mesh: options.mesh } : {}),
      })
      print(globals().json, res, `dm room ${res.room} (${res.name}) with ${did}`)
    })

  client('notifications', 'mentions of you, newest first').action(async (options: ClientOptions) => {
    const { client: api } = await humanSession(options)
    const page = await api.get<{
      notifications: Array<{ roomName: string; author: string; body: string; ts: number }>
    }>('/api/me/notifications')
    print(
      globals().json,
      page,
      page.notifications
        .map((n) => `${new Date(n.ts).toISOString()} #${n.roomName} ${n.author}: ${n.body}`)
        .join('\n') || 'no notifications',
    )
  })
}

function onShutdown(stop: () => Promise<void>): void {
  let stopping = false
  const handler = () => {
    if (stopping) return
    stopping = true
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`error during shutdown: ${String(err)}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}

function fail(err: unknown, json: boolean): never {
  const code = err instanceof MeshError ? err.code : 'MESH_INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  const details = err instanceof MeshError ? err.details : {}
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message, details } })}\n`)
  process.stderr.write(`error ${code}: ${message}\n`)
  if (code === 'MESH_INTERNAL' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
  process.exit(1)
}

const cli = program()
try {
  await cli.parseAsync(process.argv)
} catch (err) {
  fail(err, cli.opts<GlobalOptions>().json === true)
}
