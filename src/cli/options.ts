/** Argument parsers and the options several command groups share. */
import { readFile } from 'node:fs/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { type Command, Option } from 'commander'
import type { HttpListenInit } from '../config.ts'
import { MeshError } from '../errors.ts'
import { isDidKey } from '../identity/index.ts'

/** A repeatable option's values, in the order given. */
export const collect = (value: string, previous: string[] = []) => [...previous, value]

export const nonNegativeInt = (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0)
    throw new MeshError('MESH_BAD_REQUEST', `not a non-negative integer: ${value}`)
  return n
}

export const positiveInt = (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0)
    throw new MeshError('MESH_BAD_REQUEST', `not a positive integer: ${value}`)
  return n
}

export const dataOption = () => new Option('--data <dir>', 'data directory').default('./.mesh')
export const apiOption = () => new Option('--api <url>', 'HTTP API of the node (default: from the data dir)')
export const asOption = () => new Option('--as <name>', 'keystore key to sign with (default: the architect)')
export const proofOption = () =>
  new Option('--proof <token>', 'a delegation (token or @file) proving your rights (repeatable)').argParser(
    collect,
  )

function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(value)
  if (match === null) throw new MeshError('MESH_BAD_REQUEST', `--http wants HOST:PORT, got ${value}`)
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: Number(match[2]) }
}

/** What `httpListenOptions` says in its help: the server's name and its default address. */
export interface HttpListenHelp {
  /** `--http`'s description, e.g. 'HTTP API address'. */
  address: string
  /** The default `--http`, e.g. '127.0.0.1:7700'. */
  defaultAddress: string
  /** What answers, e.g. 'the HTTP API' in "another Host name the HTTP API answers to". */
  server: string
  /** What browsers call, e.g. 'the API' in "another origin browsers may call the API from". */
  calledAs: string
}

/** --http, --max-connections[-per-ip], --allowed-host, --allowed-origin: a server's listen options. */
export function httpListenOptions(command: Command, help: HttpListenHelp): Command {
  return command
    .option('--http <host:port>', help.address, help.defaultAddress)
    .addOption(
      new Option('--max-connections <n>', 'open HTTP connections at most (default 512)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option(
        '--max-connections-per-ip <n>',
        'open HTTP connections from one address at most (default 64; 127.0.0.1 and ::1 exempt)',
      ).argParser(positiveInt),
    )
    .option('--allowed-host <name>', `another Host name ${help.server} answers to (repeatable)`, collect)
    .option(
      '--allowed-origin <origin>',
      `another origin browsers may call ${help.calledAs} from (repeatable)`,
      collect,
    )
}

/** The options `httpListenOptions` added, as the HTTP listen settings. */
export function httpListen(options: Record<string, unknown>): HttpListenInit {
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

// outbound invocation over libp2p (shared with `mesh invoke`)
/** A skill's `--input`: JSON, or undefined when not given. */
export function jsonInput(value: string | undefined): unknown {
  if (value === undefined) return undefined
  try {
    return JSON.parse(value)
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', '--input is not JSON')
  }
}

// issue 14: a did a person types is checked before anything is signed or sent
/** `value` as a did of the given methods, or MESH_BAD_REQUEST naming what was expected. */
export function didArgument(
  value: string,
  what: string,
  methods: Array<'key' | 'web'> = ['key', 'web'],
): string {
  if (value.startsWith('did:key:')) {
    if (isDidKey(value)) return value
    throw new MeshError(
      'MESH_BAD_REQUEST',
      `${what} is not a valid did:key (an Ed25519 key, did:key:z6Mk…): ${value}`,
      {
        did: value,
      },
    )
  }
  if (methods.includes('web') && /^did:web:[A-Za-z0-9._%-]+(:[A-Za-z0-9._%-]+)*$/.test(value)) return value
  const expected = methods.map((m) => `did:${m}`).join(' or ')
  throw new MeshError('MESH_BAD_REQUEST', `${what} must be a ${expected}, got ${value}`, { did: value })
}

// issue 14: deployment — --listen and --announce multiaddrs, --public-url
/** A repeatable multiaddr option's values; MESH_BAD_REQUEST for one that does not parse. */
export const collectMultiaddr = (value: string, previous: string[] = []) => {
  try {
    multiaddr(value)
  } catch (err) {
    throw new MeshError('MESH_BAD_REQUEST', `not a multiaddr: ${value} (${(err as Error).message})`, {
      multiaddr: value,
    })
  }
  return collect(value, previous)
}

/** `--public-url`: an http(s) URL with no query, fragment or credentials, without its trailing slash. */
export const publicUrl = (value: string) => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', `--public-url is not a URL: ${value}`)
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.search || url.hash || url.username || url.password)
    throw new MeshError('MESH_BAD_REQUEST', `--public-url wants http(s)://HOST[:PORT][/PATH], got ${value}`)
  return url.href.replace(/\/$/, '')
}

// reachable by URL (SPEC §10)
/** `--description`: printable text of at most 280 characters. */
export const description = (value: string) => {
  if (value.length > 280 || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new MeshError('MESH_BAD_REQUEST', '--description is printable text of at most 280 characters')
  }
  return value
}

// coordination fees (SPEC §10): offline checks read a saved JSON file
/** The JSON value in `file`; MESH_BAD_REQUEST when it cannot be read or is not JSON. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new MeshError('MESH_BAD_REQUEST', `cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', `${file} is not JSON`)
  }
}
