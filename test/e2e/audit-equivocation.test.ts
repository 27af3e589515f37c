import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { chromium } from 'playwright-core'
import { runMesh, startMesh, waitFor } from '../../scripts/lib/processes.ts'
import type { DefectionRecord } from '../../src/audit/index.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { type CliMesh, connectionView, e2e, FAST_RETRY, freePort } from '../fixtures/e2e.ts'

const FORKING_MESH = new URL('../fixtures/forking-mesh.ts', import.meta.url).pathname
/** The audit gossip interval of the honest meshes (`mesh start --audit-interval`). */
const INTERVAL_MS = 2000

describe('equivocation caught across processes (SPEC §11 Must-show)', () => {
  it('alpha shows one log to beta and another to gamma: both flag it within two intervals; delta, linked to beta only, learns it from beta’s proof and verifies it', async (t) => {
    const e = await e2e(t, 'mesh-equivocation-e2e-', { logLevel: 'warn' })
    const { root, init, signInArchitect, cli, env } = e
    const honest: CliMesh[] = []
    for (const name of ['beta', 'gamma', 'delta']) {
      const m: CliMesh = { name, dir: join(root, name) }
      await init(name, m.dir)
      m.proc = await e.start([
        'start',
        ...['--data', m.dir, '--http', `127.0.0.1:${await freePort()}`],
        ...['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`],
        ...['--discovery-interval', '60000', ...FAST_RETRY, '--probe-interval', '0'],
        ...['--audit-interval', String(INTERVAL_MS)],
      ])
      m.api = await signInArchitect(m.proc.http, name)
      m.did = m.proc.did as string
      honest.push(m)
    }
    const [beta, gamma, delta] = honest as [CliMesh, CliMesh, CliMesh]
    const alpha: CliMesh = { name: 'alpha', dir: join(root, 'alpha') }
    await init('alpha', alpha.dir)
    alpha.proc = await startMesh(
      [
        ...['--data', alpha.dir, '--http', `127.0.0.1:${await freePort()}`],
        ...['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`],
        ...['--fork-for', gamma.did as string],
      ],
      env,
      30_000,
      FORKING_MESH,
    )
    e.running.push(alpha.proc)
    alpha.did = alpha.proc.did as string

    const link = async (x: CliMesh, y: CliMesh) => {
      const { id } = await cli<{ id: string }>(x, 'connect', y.proc?.listen[0] as string)
      await waitFor(async () => (await connectionView(y, id))?.status === 'pending', `${y.name} sees ${id}`)
      await cli(y, 'accept', id)
      await waitFor(async () => (await connectionView(x, id))?.status === 'accepted', `${x.name}–${y.name}`)
    }
    alpha.api = await signInArchitect(alpha.proc.http, 'alpha')
    await link(alpha, beta)
    await link(alpha, gamma)
    await link(beta, delta)
    // The link that lets beta and gamma compare what alpha showed each: timed from here.
    await link(beta, gamma)
    const linked = Date.now()

    const flagged = (m: CliMesh, timeoutMs: number) =>
      waitFor(
        async () =>
          (
            await (m.api as HttpClient).get<{ defections: DefectionRecord[] }>('/api/federation/defections')
          ).defections.find((d) => d.mesh === alpha.did),
        `${m.name} flags alpha`,
        timeoutMs,
        100,
      )
    // Two gossip rounds: one to hold a head of alpha, one to swap them; plus the time
    // four processes on a shared machine take to answer.
    const [atBeta, atGamma] = await Promise.all([
      flagged(beta, 2 * INTERVAL_MS + 8000),
      flagged(gamma, 2 * INTERVAL_MS + 8000),
    ])
    const elapsed = Date.now() - linked
    t.diagnostic(`beta and gamma flagged alpha ${elapsed} ms after they linked (interval ${INTERVAL_MS} ms)`)
    assert.equal(atBeta.proof.mesh, alpha.did)
    assert.equal(atGamma.proof.mesh, alpha.did)

    const atDelta = await flagged(delta, 20_000)
    assert.ok(atDelta.source.startsWith('peer:'), atDelta.source)

    // delta exports the proof and anyone verifies it offline.
    const proof = await cli<Record<string, unknown>>(delta, 'audit', 'proof', alpha.did)
    const file = join(root, 'alpha-equivocation.json')
    await writeFile(file, JSON.stringify(proof))
    const check = await runMesh(['--json', 'audit', 'check', file])
    assert.equal(check.code, 0, check.stderr)
    assert.equal(JSON.parse(check.stdout).mesh, alpha.did)

    // beta's console shows the alert (when Chromium and the built console are here).
    await consoleAlert(t, e.keysDir, beta, alpha.did)

    // No honest mesh is flagged anywhere.
    for (const m of honest) {
      const { defections } = await (m.api as HttpClient).get<{ defections: DefectionRecord[] }>(
        '/api/federation/defections',
      )
      assert.deepEqual(
        defections.map((d) => d.mesh),
        [alpha.did],
        m.name,
      )
    }
  })
})

// Debian's Chromium (installed by .ci/run), as the console's own browser tests use it.
const CHROMIUM = process.env.MESH_CHROMIUM ?? '/usr/bin/chromium'
const CONSOLE_BUILT = existsSync(new URL('../../dist/ui/index.html', import.meta.url))

/** Signs in to `m`'s console as its architect and waits for the defection alert naming `offender`. */
async function consoleAlert(t: TestContext, keysDir: string, m: CliMesh, offender: string): Promise<void> {
  if (!existsSync(CHROMIUM) || !CONSOLE_BUILT) {
    t.diagnostic('console alert not checked: no Chromium or no built console')
    return
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
  })
  try {
    const page = await browser.newPage()
    await page.goto(`${m.proc?.http}/`)
    await page.locator('input[type=file]').setInputFiles(join(keysDir, `${m.name}-architect.json`))
    await page.getByTestId('key-did').first().waitFor({ state: 'visible', timeout: 20_000 })
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    const alert = page.getByTestId('defections')
    await alert.waitFor({ state: 'visible', timeout: 20_000 })
    const text = (await alert.textContent()) ?? ''
    assert.match(text, /showed different audit logs/)
    assert.ok(text.includes(offender.slice(0, 14)), text)
  } finally {
    await browser.close()
  }
}
