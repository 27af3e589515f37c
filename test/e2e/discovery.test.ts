import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { getJson, type MeshProcess, runMesh, waitFor } from '../../scripts/lib/processes.ts'
import { e2e, freePort } from '../fixtures/e2e.ts'
import { tempDir } from '../fixtures/principals.ts'

interface PublicMesh {
  did: string
  name: string
  status: string
  members: number
  bots: number
  rooms: number
  multiaddrs: string[]
}

const list = (http: string) => getJson<{ meshes: PublicMesh[] }>(`${http}/api/meshes/public?limit=100`)
// Heartbeats and discovery rounds. A mesh reads online for 1.5 intervals after a
// heartbeat: long enough here that a busy machine's late heartbeat does not read idle.
const INTERVAL = '2000'
/** A slow machine is slow, not broken: every wait is generous. */
const PATIENCE_MS = 90_000

describe('registry, bootstrap and DHT discovery across processes', () => {
  it('three meshes find each other, a fourth finds them through the DHT alone, stopped meshes go offline', async (t) => {
    const { root, env, start, init, registry: startRegistry } = await e2e(t, 'mesh-e2e-')
    const registryHttp = `127.0.0.1:${await freePort()}`
    let registry = await startRegistry(registryHttp, INTERVAL)

    const names = ['alpha', 'beta', 'gamma']
    const meshes: MeshProcess[] = []
    for (const name of names) {
      await init(name)
      const mesh = await start([
        'start',
        ...['--data', join(root, name), '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'],
        ...['--registry', registry.http, '--public'],
        ...['--discovery-interval', INTERVAL, '--heartbeat-interval', INTERVAL],
      ])
      assert.match(mesh.did ?? '', /^did:key:z6Mk/)
      assert.match(mesh.peerId ?? '', /^12D3Koo/)
      assert.ok(mesh.listen.every((a) => a.startsWith('/ip4/127.0.0.1/tcp/')))
      meshes.push(mesh)
    }

    // Each mesh lists the other two in its own /api/meshes/public.
    for (const [i, mesh] of meshes.entries()) {
      const others = meshes.filter((_, j) => j !== i).map((m) => m.did)
      await waitFor(
        async () => {
          const dids = (await list(mesh.http)).meshes.map((m) => m.did)
          return others.every((d) => dids.includes(d as string)) && !dids.includes(mesh.did as string)
        },
        `${names[i]} to list the other two`,
        PATIENCE_MS,
      )
    }

    // The DHT records carry the same counts (published again once agents and rooms are up).
    await waitFor(
      async () => {
        const { meshes: known } = await list(meshes[0]?.http as string)
        return known.length === 2 && known.every((m) => m.members === 1 && m.bots === 2 && m.rooms === 0)
      },
      'alpha to see the other meshes with their counts',
      PATIENCE_MS,
    )

    // The registry shows all three online with counts.
    const atRegistry = await waitFor(
      async () => {
        const { meshes: listed } = await list(registry.http)
        return listed.length === 3 && listed.every((m) => m.status === 'online') ? listed : undefined
      },
      'the registry to show three online meshes',
      PATIENCE_MS,
    )
    for (const m of atRegistry) {
      assert.ok(names.includes(m.name))
      assert.equal(m.members, 1, 'the architect is the one member')
      assert.equal(m.bots, 2, 'the built-in agents: echo and summarizer')
      assert.equal(m.rooms, 0)
    }

    // The CLI reads the node through its data dir and signs in with the architect's keystore key.
    const status = await runMesh(['--json', 'status', '--data', join(root, 'alpha')], env)
    assert.equal(status.code, 0, status.stderr)
    assert.equal((JSON.parse(status.stdout) as { did: string }).did, meshes[0]?.did)
    const whoami = await runMesh(['--json', 'whoami', '--data', join(root, 'alpha')], env)
    assert.equal(whoami.code, 0, whoami.stderr)
    assert.equal((JSON.parse(whoami.stdout) as { role: string }).role, 'architect')

    // With the registry gone, a fourth mesh that knows one multiaddr finds all three.
    await registry.stop()
    const bootstrap = meshes[0]?.listen[0] as string
    assert.ok(bootstrap.endsWith(`/p2p/${meshes[0]?.peerId}`))
    const delta = await start([
      'start',
      ...['--data', join(root, 'delta'), '--name', 'delta', '--http', '127.0.0.1:0'],
      ...['--bootstrap', bootstrap, '--discovery-interval', INTERVAL],
    ])
    await waitFor(
      async () => {
        const dids = (await list(delta.http)).meshes.map((m) => m.did)
        return meshes.every((m) => dids.includes(m.did as string))
      },
      'delta to discover alpha, beta and gamma through the DHT',
      PATIENCE_MS,
    )
    const deltaFound = delta.logs.filter((l) => l.event === 'discovery.mesh_found').length
    assert.ok(deltaFound >= 3 || (await list(delta.http)).meshes.length >= 3)

    // A restarted registry keeps its list; a crashed mesh turns offline after three missed
    // heartbeats, a cleanly stopped one at once.
    registry = await startRegistry(registryHttp, INTERVAL)
    assert.deepEqual(
      (await list(registry.http)).meshes.map((m) => m.name).sort(),
      names,
      'the registry kept its list across a restart',
    )
    await meshes[2]?.stop('SIGKILL')
    await meshes[1]?.stop('SIGTERM')
    await waitFor(
      async () => {
        const byName = new Map<string, string>(
          (await list(registry.http)).meshes.map((m) => [m.name, m.status]),
        )
        return (
          byName.get('gamma') === 'offline' &&
          byName.get('beta') === 'offline' &&
          byName.get('alpha') === 'online'
        )
      },
      'gamma and beta offline, alpha online at the registry',
      PATIENCE_MS,
    )
    const offline = await getJson<{ meshes: PublicMesh[] }>(
      `${registry.http}/api/meshes/public?status=offline`,
    )
    assert.deepEqual(offline.meshes.map((m) => m.name).sort(), ['beta', 'gamma'])
  })

  it('start prints clear errors with their codes', async (t) => {
    const root = await tempDir(t, 'mesh-e2e-')
    const env = { MESH_KEYSTORE: join(root, 'keys') }
    const bad = await runMesh(['init', '--data', join(root, 'x'), '--name', 'Bad Name!'], env)
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /MESH_BAD_REQUEST/)
    const ok = await runMesh(['init', '--data', join(root, 'x'), '--name', 'fine'], env)
    assert.equal(ok.code, 0, ok.stderr)
    const again = await runMesh(['--json', 'init', '--data', join(root, 'x'), '--name', 'fine'], env)
    assert.equal(again.code, 1)
    assert.equal((JSON.parse(again.stdout) as { error: { code: string } }).error.code, 'MESH_CONFLICT')
    const noNode = await runMesh(['status', '--data', join(root, 'x')], env)
    assert.equal(noNode.code, 1)
    assert.match(noNode.stderr, /MESH_UNAVAILABLE/)
  })
})
