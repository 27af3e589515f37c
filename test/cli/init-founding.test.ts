/**
 * Issue 15 (cold start): `mesh init` issues what a first start issued — the root
 * delegation to the architect, the architect's membership credential, the built-in
 * agents' keys, credentials and member records — so a first start issues nothing and
 * loads neither ucanto nor did-jwt-vc before its ready line. A data dir an older init
 * made (without them) still gets them from its first start.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { pathToFileURL } from 'node:url'
import { runMesh, startMesh } from '../../scripts/lib/processes.ts'
import { Authority, MemberBook } from '../../src/auth/index.ts'
import { HumanKeystore } from '../../src/identity/index.ts'
import { initMesh, loadMesh, withMeshStore } from '../../src/mesh-info.ts'
import { tempDir } from '../fixtures/principals.ts'

interface Founded {
  audit: string[]
  architect: { tier: number | undefined; credentials: number; root: string | undefined }
  agents: Array<{ name: string; tier: number | undefined; credentials: number }>
}

/** What the data dir's store holds of the founding, read without issuing anything (an audit that refuses every row). */
function founded(dataDir: string): Promise<Founded> {
  return withMeshStore(dataDir, async (store) => {
    const { key, info } = await loadMesh(store, dataDir)
    const audit: string[] = []
    for await (const value of store.sublevel<{ action?: string }>('audit').values()) {
      if (typeof value === 'object' && value !== null && typeof value.action === 'string')
        audit.push(value.action)
    }
    const authority = new Authority({
      store,
      audit: { append: () => Promise.reject(new Error('this check issues nothing')) },
      meshKey: key,
      meshName: info.name,
    })
    await authority.start()
    const book = new MemberBook({ store, architectDid: info.architectDid, createdAt: info.createdAt })
    const agents = (await book.list())
      .filter((m) => m.kind === 'agent')
      .map((m) => ({
        name: m.name,
        tier: authority.trust.tierOf(m.did),
        credentials: authority.heldCredentials(m.did).length,
      }))
      .sort((a, b) => a.name.localeCompare(b.name))
    const root = authority.rootDelegation()
    return {
      audit,
      architect: {
        tier: authority.trust.tierOf(info.architectDid),
        credentials: authority.heldCredentials(info.architectDid).length,
        root: root?.architect === info.architectDid ? 'to the architect' : root?.architect,
      },
      agents,
    }
  })
}

const FOUNDED: Founded = {
  audit: ['authority.root-delegated', 'trust.enrolled', 'trust.enrolled', 'trust.enrolled'],
  architect: { tier: 1, credentials: 1, root: 'to the architect' },
  agents: [
    { name: 'echo', tier: 3, credentials: 1 },
    { name: 'summarizer', tier: 3, credentials: 1 },
  ],
}

/** `mesh start` to its ready line and stopped, noting which packages had loaded by the ready line. */
async function startOnce(t: TestContext, root: string, dataDir: string, env: Record<string, string>) {
  const trace = join(root, `loaded-${Math.random().toString(36).slice(2)}.json`)
  const hook = join(root, 'hook.mjs')
  await writeFile(
    hook,
    `import { registerHooks } from 'node:module'
    import { writeFileSync } from 'node:fs'
    const seen = new Set()
    registerHooks({ resolve(spec, ctx, next) {
      const r = next(spec, ctx)
      const m = r.url.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//)
      if (m) seen.add(m[1])
      return r
    } })
    const write = process.stdout.write.bind(process.stdout)
    process.stdout.write = (chunk, ...rest) => {
      if (String(chunk).startsWith('ready ')) writeFileSync(process.env.LOADED_TRACE, JSON.stringify([...seen]))
      return write(chunk, ...rest)
    }`,
  )
  const node = await startMesh(['start', '--data', dataDir, '--http', '127.0.0.1:0'], {
    ...env,
    LOADED_TRACE: trace,
    NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`,
  })
  t.after(() => node.stop('SIGKILL'))
  await node.stop('SIGTERM')
  return JSON.parse(await readFile(trace, 'utf8')) as string[]
}

const ISSUERS = ['@ucanto/core', '@ucanto/validator', 'did-jwt', 'did-jwt-vc']

describe('mesh init issues what a first start issued (issue 15)', () => {
  it('the root delegation, the architect’s and the agents’ credentials; the first start issues nothing and loads no issuer', async (t) => {
    const root = await tempDir(t, 'mesh-founding-')
    const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
    const dataDir = join(root, 'alpha')
    const init = await runMesh(['init', '--data', dataDir], env)
    assert.equal(init.code, 0, init.stderr)
    assert.deepEqual(await founded(dataDir), FOUNDED)
    const loaded = await startOnce(t, root, dataDir, env)
    assert.ok(loaded.includes('libp2p') && loaded.includes('fastify'), 'the trace saw the node load')
    assert.deepEqual(
      ISSUERS.filter((p) => loaded.includes(p)),
      [],
    )
    assert.deepEqual(await founded(dataDir), FOUNDED, 'the first start issued nothing more')
  })

  it('a data dir an older init made (no founding) gets it from its first start', async (t) => {
    const root = await tempDir(t, 'mesh-founding-')
    const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
    const dataDir = join(root, 'beta')
    await withMeshStore(dataDir, (store) =>
      initMesh({ store, dataDir, name: 'beta', keystore: new HumanKeystore(env.MESH_KEYSTORE) }),
    )
    await startOnce(t, root, dataDir, env)
    assert.deepEqual(await founded(dataDir), FOUNDED)
  })
})
