import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { createRotationRecord, Ed25519KeyPair, type MeshKeyHistory } from '../../src/identity/index.ts'
import { MANIFEST_SCHEMA_URL, type MeshManifest, verifyManifest } from '../../src/manifest/index.ts'
import { INVOCABLE, invocableNow } from '../../src/node/invocable.ts'
import { buildManifest, keyHistoryOf } from '../../src/node/manifest.ts'

const createdAt = '2026-01-01T00:00:00.000Z'
const info = { name: 'alpha', architectDid: 'did:key:z6MkArchitect', createdAt }
const federation = {
  mode: 'open' as const,
  autoAccept: false,
  maxForeignParticipantsPerRoom: 50,
  maxBackfillEventsPerRequest: 500,
}

function oneKey(): MeshKeyHistory {
  const key = Ed25519KeyPair.generate()
  return { identity: key.did, records: [], keys: [key.did], current: key }
}

/** A history of three keys, rotated at ts 1000 and 2000. */
function threeKeys(): MeshKeyHistory {
  const keys = [Ed25519KeyPair.generate(), Ed25519KeyPair.generate(), Ed25519KeyPair.generate()] as const
  const identity = keys[0].did
  const records = [
    createRotationRecord(keys[0], keys[1], { identity, seq: 1, ts: 1000 }),
    createRotationRecord(keys[1], keys[2], { identity, seq: 2, ts: 2000 }),
  ]
  return { identity, records, keys: keys.map((k) => k.did), current: keys[2] }
}

describe('keyHistoryOf', () => {
  it('lists a mesh that never rotated as one key valid since its creation', () => {
    const history = oneKey()
    assert.deepEqual(keyHistoryOf(history, createdAt), [{ did: history.identity, validFrom: createdAt }])
  })

  it('bounds each key by the records that introduced and retired it', () => {
    const history = threeKeys()
    const [first, second, third] = keyHistoryOf(history, createdAt)
    assert.deepEqual(first, {
      did: history.keys[0],
      validFrom: createdAt,
      validUntil: new Date(1000).toISOString(),
    })
    assert.deepEqual(second, {
      did: history.keys[1],
      validFrom: new Date(1000).toISOString(),
      validUntil: new Date(2000).toISOString(),
      rotationSignature: history.records[0]?.sigPrevious,
      rotation: history.records[0],
    })
    assert.deepEqual(third, {
      did: history.keys[2],
      validFrom: new Date(2000).toISOString(),
      rotationSignature: history.records[1]?.sigPrevious,
      rotation: history.records[1],
    })
  })
})

describe('buildManifest', () => {
  const input = (history: MeshKeyHistory, serveRegistry: boolean) => ({
    key: history.current,
    info,
    history,
    httpUrl: 'http://127.0.0.1:7700',
    multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
    protocolVersions: ['/mesh/connect/1.0.0'],
    serveRegistry,
    agents: [],
    federation,
  })

  it('is signed by the current key and names the registry only where one is served', () => {
    const history = threeKeys()
    const manifest = buildManifest(input(history, false))
    assert.equal(verifyManifest(manifest), true)
    assert.equal(manifest.did, history.current.did)
    const { federation: httpFederation, ...endpoints } = manifest.endpoints
    assert.deepEqual(endpoints, {
      http: 'http://127.0.0.1:7700',
      libp2p: ['/ip4/127.0.0.1/tcp/4001'],
    })
    // phase-1 HTTP federation (SPEC §12)
    assert.equal(httpFederation?.send, 'http://127.0.0.1:7700/federation/send')
    assert.equal(manifest.keyHistory.length, 3)
    // Without agents only the room capabilities a chain can reach are listed.
    assert.deepEqual(manifest.capabilities, ['room/post', 'room/read'])
    assert.deepEqual(Object.keys(manifest.invocation), ['room/post', 'room/read'])
    assert.equal(buildManifest(input(history, true)).endpoints.registry, 'http://127.0.0.1:7700')
  })

  const card = (history: MeshKeyHistory) => ({
    did: history.current.did,
    name: 'echo',
    description: 'echo',
    version: '1.0.0',
    capabilities: {},
    skills: [{ id: 'echo', name: 'Echo', description: 'echo' }],
  })

  it('lists agent/invoke, and how to invoke it, only while the mesh has an agent', () => {
    const history = oneKey()
    const manifest = buildManifest({ ...input(history, false), agents: [card(history)] })
    assert.equal(verifyManifest(manifest), true)
    assert.deepEqual(manifest.capabilities, ['agent/invoke', 'room/post', 'room/read'])
    const how = manifest.invocation['agent/invoke']
    assert.equal(how?.with, '{did}/agents/{agent}')
    assert.deepEqual(how?.via, [
      { transport: 'http', method: 'POST', path: '/api/invoke' },
      { transport: 'libp2p', protocol: '/mesh/invoke/1.0.0' },
    ])
    assert.deepEqual(how?.nb.required, ['ability'])
    // agent/invoke is not participation: a foreign principal needs tier 3
    assert.equal(how?.tier, 3)
    assert.equal(verifyManifest({ ...manifest, invocation: {} }), false)
  })

  it('lists each capability once, keyed like its invocation', () => {
    const cans = INVOCABLE.map((row) => row.can)
    assert.equal(new Set(cans).size, cans.length)
    const all = invocableNow({ agents: [{} as never] })
    assert.deepEqual(Object.keys(all.invocation), all.capabilities)
  })

  it('the schema takes how to invoke and refuses a malformed one', async () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true })
    addFormats.default(ajv)
    const validate = ajv.compile(JSON.parse(await readFile(MANIFEST_SCHEMA_URL, 'utf8')) as object)
    const history = oneKey()
    const manifest = buildManifest({ ...input(history, false), agents: [card(history)] })
    assert.equal(validate(manifest), true, JSON.stringify(validate.errors))
    const how = manifest.invocation['agent/invoke'] as MeshManifest['invocation'][string]
    const bad = (change: Partial<typeof how>) => ({
      ...manifest,
      invocation: { 'agent/invoke': { ...how, ...change } },
    })
    for (const wrong of [
      bad({ with: 'did:key:z6Mkx/agents/echo' }),
      bad({ tier: 2 as never }),
      bad({ via: [] }),
      bad({ via: [{ transport: 'smoke', path: '/api/invoke' } as never] }),
      bad({ via: [{ transport: 'http', method: 'GET', path: '/api/invoke' } as never] }),
      bad({ nb: { type: 'array' } as never }),
      { ...manifest, invocation: { 'Agent Invoke': how } },
      { ...manifest, invocation: undefined },
    ]) {
      assert.equal(validate(wrong), false, JSON.stringify(wrong.invocation))
    }
  })
})
