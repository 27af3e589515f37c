/**
 * How a client command reaches its node and signs: the node's HTTP address from
 * `--api` or the data dir, the human key from `--as` or the data dir's architect, and a
 * session opened with that key.
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { MeshError, UnavailableError } from '../errors.ts'
import type { Ed25519KeyPair, HumanKeystore } from '../identity/index.ts'
import { NODE_ADDRESS_FILE } from '../node/address-file.ts'
import { actCapability, chainProofs, invocationToken } from './chains.ts'
import { type HttpClient, signIn } from './http-client.ts'
import { apiOption, asOption, dataOption, proofOption } from './options.ts'

/** The options every client command takes. */
export interface ClientOptions {
  data: string
  api?: string
  as?: string
  /** Delegations (tokens or @files) that prove the signer's rights; default the root delegation. */
  proof?: string[]
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
export async function apiUrl(options: { api?: string; data: string }): Promise<string> {
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

/** The human (or agent) key named `--as` (default: the data dir's architect). */
export async function signingKey(
  keystore: HumanKeystore,
  options: { as?: string; data: string },
): Promise<Ed25519KeyPair> {
  return keystore.load(await signingKeyName(options))
}

/** A session at the node, and the acts its signer can sign there. */
export interface HumanSession {
  key: Ed25519KeyPair
  client: HttpClient
  /**
   * A UCAN chain act on this mesh: signed by the human key, with `--proof` or the root
   * delegation; on `resource` (default the mesh itself, e.g. a room's resource).
   */
  chainAct(can: string, subject?: string, resource?: string): Promise<string>
}

/** A session at the node, opened with the human key the command signs with. */
export async function humanSession(keystore: HumanKeystore, options: ClientOptions): Promise<HumanSession> {
  const key = await signingKey(keystore, options)
  const client = await signIn(await apiUrl(options), key)
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

/**
 * A subcommand of `parent` that talks to a running node: --data, --api, --as, and
 * (unless `proof` is false) --proof.
 */
export function clientCommand(
  parent: Command,
  name: string,
  description: string,
  { proof = true }: { proof?: boolean } = {},
): Command {
  const command = parent
    .command(name)
    .description(description)
    .addOption(dataOption())
    .addOption(apiOption())
    .addOption(asOption())
  return proof ? command.addOption(proofOption()) : command
}
