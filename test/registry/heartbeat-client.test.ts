import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { createHttpApp } from '../../src/http/http-app.ts'
import { createLogger, silentLogger } from '../../src/log.ts'
import {
  HeartbeatClient,
  type HeartbeatClientInit,
  type HeartbeatInfo,
  type PublicMesh,
} from '../../src/registry/index.ts'
import type { MeshStore } from '../../src/store/index.ts'
import { alice, tempStore } from '../fixtures/principals.ts'
import { listenTestRegistry } from './registry-fixtures.ts'

/** A registry on a real socket (port 0), closed when the test ends; no admission stamps unless `powBits`. */
async function startRegistryServer(t: TestContext, intervalMs = 60_000, powBits = 0): Promise<string> {
  return (await listenTestRegistry(t, await tempStore(t), { heartbeatIntervalMs: intervalMs, powBits })).url
}

/** A URL where nothing listens: a server on port 0, closed again. */
async function deadUrl(): Promise<string> {
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  await app.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

async function listed(url: string): Promise<PublicMesh[]> {
  const response = await fetch(`${url}/api/meshes/public?limit=100`)
  assert.equal(response.status, 200)
  return ((await response.json()) as { meshes: PublicMesh[] }).meshes
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const count = (server: ReturnType<typeof createServer>): Promise<number> =>
  new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))))

const info: HeartbeatInfo = {
  name: 'alice',
  multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
  members: 2,
  bots: 1,
  rooms: 3,
  version: '0.1.0',
  protocolVersions: ['/mesh/kad/1.0.0'],
}

interface LogLine {
  event?: string
  code?: string
  seq?: number
}

/** A client whose log lines are collected, stopped when the test ends. */
function client(
  t: TestContext,
  store: MeshStore,
  init: Partial<HeartbeatClientInit> & Pick<HeartbeatClientInit, 'registryUrl'>,
): { client: HeartbeatClient; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  })
  const heartbeat = new HeartbeatClient({ key: alice, store, logger, content: () => info, ...init })
  t.after(() => heartbeat.stop())
  return { client: heartbeat, lines }
}

describe('HeartbeatClient', () => {
  it('announces the mesh every interval and marks it offline at once when stopped', async (t) => {
    const url = await startRegistryServer(t)
    const { client: heartbeat, lines } = client(t, await tempStore(t), { registryUrl: url, intervalMs: 50 })
    await heartbeat.start()
    const [mesh] = await waitFor('alice listed', async () => {
      const meshes = await listed(url)
      return meshes.length > 0 ? meshes : undefined
    })
    assert.deepEqual(
      { ...mesh, lastHeartbeat: undefined },
      {
        did: alice.did,
        name: 'alice',
        peerId: alice.peerId().toString(),
        multiaddrs: info.multiaddrs,
        status: 'online',
        members: 2,
        bots: 1,
        rooms: 3,
        version: '0.1.0',
        protocolVersions: info.protocolVersions,
        lastHeartbeat: undefined,
        firstSeen: mesh?.firstSeen,
      },
    )
    // Several beats, each with a higher seq, none refused.
    await waitFor('three heartbeats', async () =>
      lines.filter((l) => l.event === 'registry.heartbeat.sent').length >= 3 ? true : undefined,
    )
    const seqs = lines.filter((l) => l.event === 'registry.heartbeat.sent').map((l) => l.seq as number)
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    )
    assert.equal(new Set(seqs).size, seqs.length)

    await heartbeat.stop()
    assert.equal((await listed(url))[0]?.status, 'offline')
    assert.equal(
      lines.some((l) => l.event === 'registry.heartbeat.failed'),
      false,
    )
    // Stopped means stopped: no heartbeat after the last one.
    const sent = lines.length
    await new Promise((resolve) => setTimeout(resolve, 150))
    assert.equal(lines.length, sent)
  })

  it('keeps its seq growing across a restart, even with a clock that stands still', async (t) => {
    const url = await startRegistryServer(t)
    const store = await tempStore(t)
    const frozen = Date.now()
    const first = client(t, store, { registryUrl: url, now: () => frozen }).client
    assert.deepEqual(await first.beat(), { ok: true, seq: frozen, status: 'online' })
    assert.deepEqual(await first.beat(), { ok: true, seq: frozen + 1, status: 'online' })

    const again = client(t, store, { registryUrl: url, now: () => frozen }).client
    assert.deepEqual(await again.beat(), { ok: true, seq: frozen + 2, status: 'online' })
  })

  it('finds the admission stamp a registry asks for once per key, keeps it, and is listed', async (t) => {
    const url = await startRegistryServer(t, 60_000, 10)
    const store = await tempStore(t)
    const { client: first, lines } = client(t, store, { registryUrl: url })
    const result = await first.beat()
    assert.equal(result.ok, true)
    assert.deepEqual(
      lines.filter((l) => l.event?.startsWith('registry.pow.')).map((l) => l.event),
      ['registry.pow.computing', 'registry.pow.found'],
    )
    assert.equal(lines.filter((l) => l.event === 'registry.heartbeat.failed').length, 0)
    assert.deepEqual(
      (await listed(url)).map((m) => m.did),
      [alice.did],
    )
    // Restarted on the same store, it sends the stamp it kept and works no more.
    const again = client(t, store, { registryUrl: await startRegistryServer(t, 60_000, 10) })
    assert.equal((await again.client.beat()).ok, true)
    assert.equal(
      again.lines.some((l) => l.event === 'registry.pow.computing'),
      false,
    )
    // A registry asking for more than maxPowBits is not worked for: its refusal is reported.
    const greedy = client(t, await tempStore(t), {
      registryUrl: await startRegistryServer(t, 60_000, 12),
      maxPowBits: 8,
    })
    const refused = await greedy.client.beat()
    assert.equal(refused.ok === false && refused.code, 'MESH_FORBIDDEN')
    assert.equal(
      greedy.lines.some((l) => l.event === 'registry.pow.computing'),
      false,
    )
  })

  it('logs registry.heartbeat.failed with the registry’s error code', async (t) => {
    const url = await startRegistryServer(t)
    const { client: heartbeat, lines } = client(t, await tempStore(t), {
      registryUrl: url,
      now: () => Date.now() - 120_000,
    })
    const result = await heartbeat.beat()
    assert.equal(result.ok, false)
    assert.equal(result.ok === false && result.code, 'MESH_CLOCK_SKEW')
    assert.deepEqual(
      lines.filter((l) => l.event === 'registry.heartbeat.failed').map((l) => l.code),
      ['MESH_CLOCK_SKEW'],
    )
    assert.deepEqual(await listed(url), [])
  })

  it('survives an unreachable registry: failures are logged and stop still returns', async (t) => {
    const url = await deadUrl()
    const { client: heartbeat, lines } = client(t, await tempStore(t), {
      registryUrl: url,
      intervalMs: 20,
      stopTimeoutMs: 500,
    })
    await heartbeat.start()
    await waitFor('two failures', async () =>
      lines.filter((l) => l.event === 'registry.heartbeat.failed').length >= 2 ? true : undefined,
    )
    await heartbeat.stop()
    const failed = lines.filter((l) => l.event === 'registry.heartbeat.failed')
    assert.ok(failed.every((l) => l.code === 'MESH_UNAVAILABLE'))
  })

  it('cuts a heartbeat short when stopped and gives the offline one only stopTimeoutMs', async (t) => {
    // A registry that takes requests and never answers them.
    const server = createServer(() => undefined)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      server.closeAllConnections()
      server.close()
    })
    const { port } = server.address() as { port: number }
    const { client: heartbeat, lines } = client(t, await tempStore(t), {
      registryUrl: `http://127.0.0.1:${port}`,
      stopTimeoutMs: 200,
    })
    await heartbeat.start()
    await waitFor('a request under way', async () => ((await count(server)) > 0 ? true : undefined))
    const started = Date.now()
    await heartbeat.stop()
    assert.ok(Date.now() - started < 2_000, 'stop waited for the hung registry')
    assert.deepEqual(
      lines.filter((l) => l.event?.startsWith('registry.heartbeat.')).map((l) => [l.event, l.code]),
      [
        ['registry.heartbeat.cancelled', undefined],
        ['registry.heartbeat.failed', 'MESH_UNAVAILABLE'],
      ],
    )
  })

  it('refuses a registry URL that is not http(s)', async (t) => {
    const store = await tempStore(t)
    for (const registryUrl of ['not a url', 'ftp://registry.example']) {
      assert.throws(() => new HeartbeatClient({ key: alice, store, registryUrl, content: () => info }), {
        code: 'MESH_BAD_REQUEST',
      })
    }
  })
})
