/**
 * Reachable by URL (SPEC §10): mesh records and registry heartbeats carry `http`,
 * `manifestUrl`, `description`, agents `[{name, skills}]` and capabilities, signed like
 * the rest, bounded with codes; old ones without them are still accepted; the registry
 * and a node's own list filter by capability.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import {
  createMeshRecord,
  DiscoveredMeshBook,
  encodeMeshRecord,
  type MeshProfile,
  type MeshRecordContent,
  parseMeshRecord,
} from '../../src/p2p/index.ts'
import { type PublicMesh, pageMeshes, signHeartbeat, verifyHeartbeat } from '../../src/registry/index.ts'
import { startNode } from '../connections/nodes.ts'
import { throwsWithCode } from '../fixtures/codes.ts'
import { tempStore } from '../fixtures/principals.ts'
import { until } from '../rooms/helpers.ts'
import { contentFor } from './registry-fixtures.ts'

const key = Ed25519KeyPair.generate()
const profile: MeshProfile = {
  http: 'https://alpha.example.org',
  manifestUrl: 'https://alpha.example.org/.well-known/mesh-manifest.json',
  description: 'a mesh about gardening',
  agents: [{ name: 'gardener', skills: ['prune', 'water'] }],
  capabilities: ['agent/invoke', 'room/post'],
}
const recordContent: MeshRecordContent = {
  name: 'alpha',
  multiaddrs: [],
  protocolVersions: ['/mesh/connect/1.0.0'],
  version: '0.1.0',
  members: 1,
  bots: 0,
  rooms: 0,
}
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

const tooMany = {
  description: 'x'.repeat(281),
  agents: Array.from({ length: 9 }, (_, i) => ({ name: `a${i}`, skills: [] })),
  capabilities: Array.from({ length: 17 }, (_, i) => `c${i}`),
  http: 'ftp://nope.example',
  skills: [{ name: 'a', skills: Array.from({ length: 7 }, (_, i) => `s${i}`) }],
  agentShape: [{ name: 'a', skills: [], extra: 1 }],
}

describe('mesh profile in records and heartbeats (SPEC §10)', () => {
  it('a record carries the profile, signed; a tampered profile is refused; an old record is accepted', () => {
    const record = createMeshRecord(key, { ...recordContent, ...profile }, 1)
    const parsed = parseMeshRecord(encodeMeshRecord(record))
    assert.deepEqual(
      {
        http: parsed.http,
        manifestUrl: parsed.manifestUrl,
        description: parsed.description,
        agents: parsed.agents,
        capabilities: parsed.capabilities,
      },
      profile,
    )
    throwsWithCode(
      () => parseMeshRecord(encode({ ...record, description: 'changed' })),
      'MESH_SIGNATURE_MISMATCH',
    )
    throwsWithCode(
      () => parseMeshRecord(encode({ ...record, capabilities: ['x'] })),
      'MESH_SIGNATURE_MISMATCH',
    )
    const old = createMeshRecord(key, recordContent, 2)
    assert.equal(parseMeshRecord(encodeMeshRecord(old)).description, undefined)
  })

  it('a record refuses an oversized or malformed profile (MESH_BAD_REQUEST)', () => {
    const bad: Array<Partial<Record<keyof MeshProfile, unknown>>> = [
      { description: tooMany.description },
      { agents: tooMany.agents },
      { capabilities: tooMany.capabilities },
      { http: tooMany.http },
      { manifestUrl: `https://${'x'.repeat(300)}` },
      { agents: tooMany.skills },
      { agents: tooMany.agentShape },
      { description: 'line\nbreak' },
    ]
    for (const fields of bad) {
      throwsWithCode(
        () => createMeshRecord(key, { ...recordContent, ...(fields as MeshProfile) }, 1),
        'MESH_BAD_REQUEST',
      )
      // signed by hand, past createMeshRecord's own check: the parser refuses it too
      const signed = createMeshRecord(key, recordContent, 1)
      throwsWithCode(() => parseMeshRecord(encode({ ...signed, ...fields })), 'MESH_BAD_REQUEST')
    }
  })

  it('a heartbeat carries the profile, signed; bounds refused; an old heartbeat accepted', () => {
    const now = Date.now()
    const hb = signHeartbeat(key, { ...contentFor(key, now), ...profile })
    const verified = verifyHeartbeat(JSON.parse(JSON.stringify(hb)), { now })
    assert.deepEqual(verified.agents, profile.agents)
    assert.deepEqual(verified.capabilities, profile.capabilities)
    throwsWithCode(
      () => verifyHeartbeat({ ...hb, http: 'https://mallory.example' }, { now }),
      'MESH_SIGNATURE_MISMATCH',
    )
    for (const fields of [
      { description: tooMany.description },
      { agents: tooMany.agents },
      { capabilities: tooMany.capabilities },
      { agents: tooMany.agentShape },
    ]) {
      const signed = signHeartbeat(key, { ...contentFor(key, now), ...(fields as MeshProfile) })
      throwsWithCode(() => verifyHeartbeat(signed, { now }), 'MESH_BAD_REQUEST')
    }
    const old = signHeartbeat(key, contentFor(key, now))
    assert.equal(verifyHeartbeat(old, { now }).capabilities, undefined)
  })

  it("a node's own list of discovered meshes shows the profile and filters by it", async (t) => {
    const meshes = new DiscoveredMeshBook(
      { store: await tempStore(t), logger: silentLogger(), isConnected: () => false },
      { self: Ed25519KeyPair.generate().did, intervalMs: 10_000, forgetAfterMs: 86_400_000 },
    )
    const other = Ed25519KeyPair.generate()
    await meshes.ingest(createMeshRecord(key, { ...recordContent, ...profile }, 1))
    await meshes.ingest(createMeshRecord(other, { ...recordContent, name: 'beta' }, 1))
    const listed = await meshes.list()
    const alpha = listed.find((m) => m.did === key.did)
    assert.equal(alpha?.description, profile.description)
    assert.deepEqual(alpha?.agents, profile.agents)
    assert.deepEqual(
      pageMeshes(listed, { capability: 'room/post' }).meshes.map((m) => m.did),
      [key.did],
    )
  })

  it('the list filters by capability', () => {
    const mesh = (did: string, capabilities?: string[]): PublicMesh => ({
      did,
      name: did,
      peerId: 'p',
      multiaddrs: [],
      status: 'online',
      members: 0,
      bots: 0,
      rooms: 0,
      version: '0',
      protocolVersions: [],
      lastHeartbeat: new Date(0).toISOString(),
      ...(capabilities !== undefined ? { capabilities } : {}),
    })
    const items = [mesh('a', ['room/post']), mesh('b', ['agent/invoke', 'room/post']), mesh('c')]
    const dids = (capability?: string) =>
      pageMeshes(items, capability === undefined ? {} : { capability }).meshes.map((m) => m.did)
    assert.deepEqual(dids(), ['a', 'b', 'c'])
    assert.deepEqual(dids('room/post'), ['a', 'b'])
    assert.deepEqual(dids('agent/invoke'), ['b'])
    assert.deepEqual(dids('nothing'), [])
    throwsWithCode(() => pageMeshes(items, { capability: 'x'.repeat(200) }), 'MESH_BAD_REQUEST')
  })

  it('a public node heartbeats its profile; the registry lists it and filters by capability', async (t) => {
    const host = await startNode(t, 'host', { serveRegistry: true, registry: { powBits: 0 } })
    const alpha = await startNode(t, 'alpha', {
      public: true,
      registryUrl: host.node.httpUrl,
      heartbeat: { intervalMs: 500 },
      description: 'alpha, reachable by URL',
    })
    const capability = alpha.node.manifest().capabilities[0] as string
    assert.ok(capability !== undefined, 'the manifest offers a capability')
    const list = async (query: string) => {
      const res = await fetch(`${host.node.httpUrl}/api/meshes/public${query}`)
      return {
        status: res.status,
        body: (await res.json()) as { meshes: PublicMesh[]; error?: { code: string } },
      }
    }
    const listed = await until(
      async () =>
        (await list(`?capability=${encodeURIComponent(capability)}`)).body.meshes.find(
          (m) => m.did === alpha.node.did,
        ),
      'alpha is listed with its capability',
    )
    assert.equal(listed.http, alpha.node.httpUrl)
    assert.equal(listed.manifestUrl, `${alpha.node.httpUrl}/.well-known/mesh-manifest.json`)
    assert.equal(listed.description, 'alpha, reachable by URL')
    assert.deepEqual(listed.capabilities, alpha.node.manifest().capabilities)
    assert.deepEqual(
      listed.agents,
      alpha.node.manifest().agents.map((a) => ({ name: a.name, skills: a.skills.map((s) => s.name) })),
    )
    assert.equal(alpha.node.manifest().description, 'alpha, reachable by URL')
    assert.deepEqual((await list('?capability=no%2Fsuch')).body.meshes, [])
    const bad = await list(`?capability=${'x'.repeat(49)}`)
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error?.code, 'MESH_BAD_REQUEST')
  })
})
