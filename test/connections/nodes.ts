import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { issueDelegation, issueMembershipCredential, roomResourceOf } from '../../src/auth/authority/index.ts'
import { actCapability, invocationToken, proofOf } from '../../src/cli/chains.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import type { MeshNodeInit } from '../../src/config.ts'
import {
  type ConnectionView,
  createEnvelope,
  encodeEnvelope,
  exchange,
  MESH_CONNECT_PROTOCOL,
  type PeerView,
} from '../../src/connections/index.ts'
import { type Ed25519KeyPair, HumanKeystore, peerIdFromDid, signCanonical } from '../../src/identity/index.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode, type MeshNode } from '../../src/mesh-node.ts'
import type { MeshLibp2p } from '../../src/p2p/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'
import { captureLogger, type LogLine } from '../p2p/nodes.ts'

/** Fast federation settings for tests. */
export const FAST: NonNullable<MeshNodeInit['connections']> = {
  retryBaseMs: 100,
  retryMaxMs: 500,
  sendTimeoutMs: 3000,
  probeIntervalMs: 0,
}

export interface TestNode {
  node: MeshNode
  name: string
  dataDir: string
  architect: Ed25519KeyPair
  api: HttpClient
  lines: LogLine[]
  /**
   * A UCAN chain act of this mesh's architect (or `signer`, with the same proofs)
   * addressed to this mesh: `can` on `resource` (default the mesh) with its subject
   * caveat `subject`, proved by the root delegation.
   */
  act(can: string, subject?: string, signer?: Ed25519KeyPair, resource?: string): Promise<string>
  addr(): string
  connections(): Promise<ConnectionView[]>
  peers(): Promise<PeerView[]>
  /** Stops the node (idempotent) — `restart` starts it again on the same data dir. */
  stop(): Promise<void>
  restart(overrides?: Partial<MeshNodeInit>): Promise<void>
}

/** A whole mesh node in-process (libp2p on TCP, HTTP on port 0), stopped at teardown. */
export async function startNode(
  t: TestContext,
  name: string,
  init: Partial<MeshNodeInit> = {},
): Promise<TestNode> {
  const root = await tempDir(t, `mesh-${name}-`)
  const dataDir = join(root, name)
  const keystore = new HumanKeystore(join(root, 'keys'))
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  await initMesh({ store, dataDir, name, keystore })
  await store.close()
  const architect = await keystore.load(`${name}-architect`)
  const { logger, lines } = captureLogger()
  const make = (overrides: Partial<MeshNodeInit> = {}) =>
    createMeshNode({
      dataDir,
      http: { host: '127.0.0.1', port: 0 },
      logger: init.logger ?? logger,
      discovery: { intervalMs: 60_000 },
      connections: FAST,
      ...init,
      ...overrides,
    })
  const state = { node: make(), api: undefined as unknown as HttpClient }
  await state.node.start()
  state.api = await signIn(state.node.httpUrl, architect)
  t.after(() => state.node.stop())
  const self: TestNode = {
    get node() {
      return state.node
    },
    get api() {
      return state.api
    },
    name,
    dataDir,
    architect,
    lines,
    act: async (can, subject, signer = architect, resource) => {
      const root = await state.api.get<{ token: string }>('/api/auth/root-delegation')
      const capability = actCapability(state.node.did, can, subject)
      return invocationToken(
        signer,
        state.node.did,
        resource === undefined ? capability : { ...capability, with: resource },
        [proofOf(root.token)],
      )
    },
    addr: () => state.node.multiaddrs()[0] as string,
    connections: () => state.api.get<ConnectionView[]>('/api/connections'),
    peers: () => state.api.get<PeerView[]>('/api/federation/peers'),
    stop: () => state.node.stop(),
    async restart(overrides = {}) {
      const listen = state.node.status === 'started' ? listenOf(state.node) : undefined
      await state.node.stop()
      state.node = make({ ...(listen !== undefined ? { listen } : {}), ...overrides })
      await state.node.start()
      state.api = await signIn(state.node.httpUrl, architect)
    },
  }
  return self
}

/**
 * An act in the form of the interim signed acts that came before UCAN chains (base64url
 * canonical JSON signed by the architect): every act is a chain now, so it is refused.
 */
export function formerInterimAct(node: TestNode, act: string, subject: string): string {
  const now = Math.floor(Date.now() / 1000)
  const fields = {
    act,
    iss: node.architect.did,
    aud: node.node.did,
    with: subject,
    nonce: 'n'.repeat(22),
    iat: now,
    exp: now + 600,
  }
  const signed = { ...fields, sig: signCanonical(node.architect, fields) }
  return Buffer.from(JSON.stringify(signed)).toString('base64url')
}

/** POST /api/connections from `from` to `to` (by multiaddr), signed by `from`'s architect. */
export async function requestConnection(from: TestNode, to: TestNode, note?: string): Promise<string> {
  const res = await from.api.post<{ id: string; status: string }>('/api/connections', {
    target: to.addr(),
    ucan: await from.act('mesh/connect', to.node.did),
    ...(note !== undefined ? { note } : {}),
  })
  return res.id
}

/** `node`'s architect's (or `signer`'s) chain sharing `room` with the mesh `peer` (`room/share` on the room). */
export async function shareAct(node: TestNode, room: string, peer: string, signer?: Ed25519KeyPair) {
  return node.act('room/share', peer, signer, roomResourceOf(node.node.did, room))
}

/** `node`'s architect's (or `signer`'s) chain opening a federated DM with `principal` (`room/share` on the mesh). */
export async function dmAct(node: TestNode, principal: string, signer?: Ed25519KeyPair) {
  return node.act('room/share', principal, signer)
}

export async function decide(
  node: TestNode,
  id: string,
  what: 'accept' | 'decline' | 'disconnect',
): Promise<{ id: string; status: string }> {
  return node.api.post(`/api/connections/${id}/${what}`, { ucan: await node.act(`connection/${what}`, id) })
}

/** The status of connection `id` at `node`, or undefined. */
export async function statusAt(node: TestNode, id: string): Promise<ConnectionView | undefined> {
  return (await node.connections()).find((c) => c.id === id)
}

/** Sends raw bytes on /mesh/connect/1.0.0 from a bare libp2p host and returns the parsed reply envelope. */
export async function sendRaw(
  libp2p: MeshLibp2p,
  target: TestNode,
  bytes: Uint8Array,
): Promise<{ type: string; body: Record<string, unknown>; origin: string; target: string }> {
  await libp2p.dial(multiaddr(target.addr()))
  const reply = await exchange(libp2p, peerIdFromDid(target.node.did), bytes, {
    signal: AbortSignal.timeout(5000),
  })
  return JSON.parse(Buffer.from(reply).toString('utf8'))
}

/**
 * What a (bare, test-made) mesh `meshKey` forwards as a human act: `signer`'s chain
 * invoking `can` on the mesh with its subject caveat `subject`, proved by a root
 * delegation from the mesh key to `signer`, then the mesh's membership credential
 * saying `signer` is a human.
 */
export async function peerActProofs(
  meshKey: Ed25519KeyPair,
  signer: Ed25519KeyPair,
  can: string,
  subject: string,
): Promise<string[]> {
  const expiration = Math.floor(Date.now() / 1000) + 600
  const root = await issueDelegation({
    issuer: meshKey,
    audience: signer.did,
    capabilities: [{ can: '*', with: meshKey.did }],
    expiration,
  })
  const token = await invocationToken(signer, meshKey.did, actCapability(meshKey.did, can, subject), [root])
  const credential = await issueMembershipCredential(meshKey, {
    id: signer.did,
    kind: 'human',
    role: 'architect',
    tier: 1,
    mesh: meshKey.did,
    meshName: 'mallory',
  })
  return [token, credential]
}

/** A connect.request from mesh `key` (architect `architect`) to `target`, signed and encoded. */
export async function requestEnvelope(
  key: Ed25519KeyPair,
  architect: Ed25519KeyPair,
  target: TestNode,
  options: {
    now?: number
    protocol?: string
    architectDid?: string
    connectionId?: string
    actSigner?: Ed25519KeyPair
  } = {},
) {
  const connectionId = options.connectionId ?? randomId()
  const signer = options.actSigner ?? architect
  const proofs = await peerActProofs(key, signer, 'mesh/connect', target.node.did)
  return createEnvelope(key, {
    type: 'connect.request',
    target: target.node.did,
    protocol: options.protocol ?? MESH_CONNECT_PROTOCOL,
    ...(options.now !== undefined ? { now: options.now } : {}),
    body: {
      connectionId,
      nonce: randomId(),
      name: 'mallory',
      architectDid: options.architectDid ?? architect.did,
      multiaddrs: [],
      protocolVersions: [MESH_CONNECT_PROTOCOL],
      agreementVersion: 1,
      decidedAt: options.now ?? Date.now(),
    },
    auth: { proofs },
  })
}

export { encodeEnvelope }

/** The node's listen addresses without the /p2p/ part, to restart on the same port. */
export function listenOf(node: MeshNode): string[] {
  return node.multiaddrs().map((a) => a.replace(/\/p2p\/[^/]+$/, ''))
}

function randomId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url')
}

/** Room lifecycle (SPEC §9): `node` accepts every room shared with it at once (policy `autoAcceptRooms`). */
export async function autoAcceptRooms(node: TestNode): Promise<void> {
  const policy = await node.api.get<Record<string, unknown>>('/api/federation/policy')
  await node.api.put('/api/federation/policy', { ...policy, autoAcceptRooms: true })
}
