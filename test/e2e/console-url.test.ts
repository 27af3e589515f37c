/**
 * The console in Chromium against real `mesh start` processes and a registry (SPEC §10,
 * issue 14): Browse links each mesh to its page and shows its description, agents and
 * capabilities, filters by capability, shows how this node is reached; Connect by URL
 * looks a manifest up (a tampered one is refused with its code) and sends the request;
 * room headers name the home mesh and a DM is named by its other member, not by dids.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { type Browser, chromium } from 'playwright-core'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { ConnectionView } from '../../src/connections/index.ts'
import { CHROMIUM, CHROMIUM_ARGS, consoleSkip, SHOTS, visible } from '../fixtures/console.ts'
import { acceptRoom, e2e, FAST_RETRY } from '../fixtures/e2e.ts'

const INTERVAL = '500'

describe('the console: meshes reachable by URL, and names instead of dids (SPEC §10, issue 14)', {
  skip: consoleSkip,
}, () => {
  it('Browse shows page, description, agents, capabilities and reachability; filters; connects by URL; names rooms and DMs', async (t) => {
    let browser: Browser | undefined
    const e = await e2e(t, 'mesh-console-url-', {
      logLevel: 'warn',
      beforeStop: async () => browser?.close(),
    })
    const { root, keysDir, start, init, cli } = e
    await mkdir(SHOTS, { recursive: true })
    const registry = await e.registry('127.0.0.1:0', INTERVAL)
    const procs: Record<string, Awaited<ReturnType<typeof start>>> = {}
    const dirs: Record<string, string> = {}
    for (const name of ['alpha', 'beta']) {
      dirs[name] = await init(name, join(root, name))
      procs[name] = await start([
        'start',
        ...['--data', dirs[name] as string, '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'],
        ...['--registry', registry.http, '--public'],
        ...['--discovery-interval', INTERVAL, '--heartbeat-interval', INTERVAL],
        ...['--probe-interval', '1000', '--sync-interval', '300', ...FAST_RETRY],
        ...(name === 'alpha' ? ['--description', 'alpha grows tomatoes'] : []),
      ])
    }
    const alpha = { dir: dirs.alpha as string, proc: procs.alpha as NonNullable<(typeof procs)['alpha']> }
    const beta = { dir: dirs.beta as string, proc: procs.beta as NonNullable<(typeof procs)['beta']> }

    // A tampered copy of alpha's manifest, on a tiny server of the test's own.
    const real = (await (await fetch(`${alpha.proc.http}/.well-known/mesh-manifest.json`)).json()) as object
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ ...real, description: 'alpha sells tomatoes' }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      server.closeAllConnections()
      server.close()
    })
    const tamperUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    const page = await (await browser.newContext({ viewport: { width: 1500, height: 950 } })).newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    t.after(() => assert.deepEqual(errors, [], 'uncaught errors in the page'))
    const shot = (what: string) => page.screenshot({ path: join(SHOTS, `${what}.png`), fullPage: true })

    try {
      // ---- beta's architect signs in ----
      await page.goto(`${beta.proc.http}/`)
      await page.locator('input[type=file]').setInputFiles(join(keysDir, 'beta-architect.json'))
      await visible(page.getByTestId('key-did'))
      await page.getByRole('button', { name: 'Sign in', exact: true }).click()
      await visible(page.getByTestId('mesh-name'))

      // ---- Browse: alpha's row links to its page and says what it offers ----
      await page.goto(`${beta.proc.http}/connections/browse`)
      await visible(page.getByTestId('reachability'))
      const row = page.locator('[data-testid=mesh-row][data-name=alpha]')
      await visible(row)
      assert.equal(await row.getByTestId('mesh-page').getAttribute('href'), alpha.proc.http)
      assert.equal(await row.getByTestId('mesh-description').textContent(), 'alpha grows tomatoes')
      await visible(row.locator('[data-testid=mesh-agents] [data-agent]'))
      await visible(row.locator('[data-testid=mesh-capabilities] [data-capability="room/post"]'))
      await shot('url-01-browse-profile')

      // ---- the capability filter ----
      const filter = page.getByLabel('Capability')
      await filter.fill('no/such-capability')
      await row.waitFor({ state: 'detached', timeout: 30_000 })
      await filter.fill('room/post')
      await visible(row)
      await filter.fill('')
      // ... and the same filter from the CLI: `mesh status --capability`
      type Status = { meshes: Array<{ name: string; http?: string }> }
      const offering = await cli<Status>(beta, 'status', '--capability', 'room/post')
      assert.equal(offering.meshes.find((m) => m.name === 'alpha')?.http, alpha.proc.http)
      assert.deepEqual((await cli<Status>(beta, 'status', '--capability', 'no/such')).meshes, [])

      // ---- Connect by URL: a tampered manifest is refused with its code ----
      const urlInput = page.getByLabel('Connect by URL')
      await urlInput.fill(tamperUrl)
      await page.getByRole('button', { name: 'Look up' }).click()
      const refusal = await visible(page.getByTestId('error').filter({ hasText: 'MESH_SIGNATURE_MISMATCH' }))
      assert.equal(await refusal.getAttribute('data-code'), 'MESH_SIGNATURE_MISMATCH')
      await shot('url-02-tampered-refused')
      await refusal.getByRole('button', { name: 'Dismiss' }).click()

      // ---- ... and alpha's own URL is looked up, then requested by a signed act ----
      await urlInput.fill(alpha.proc.http)
      await page.getByRole('button', { name: 'Look up' }).click()
      await visible(page.locator('[data-testid=url-mesh][data-name=alpha]'))
      await page.getByRole('button', { name: 'Sign and request by URL' }).click()
      await visible(page.getByTestId('url-request-sent'))
      await shot('url-03-requested-by-url')
      const asked = await waitFor(
        async () =>
          (await cli<ConnectionView[]>(alpha, 'requests')).find(
            (c) => c.direction === 'inbound' && c.status === 'pending',
          ),
        'alpha is asked',
      )
      await cli(alpha, 'accept', asked.id)
      await waitFor(
        async () => (await cli<ConnectionView[]>(beta, 'connections')).some((c) => c.status === 'accepted'),
        'beta sees the connection accepted',
      )

      // ---- a room of alpha's: its header names alpha, not its did ----
      const room = await cli<{ id: string }>(alpha, 'room', 'create', 'garden')
      await cli(alpha, 'share', room.id, beta.proc.did as string)
      await acceptRoom(cli, beta, room.id)
      await page.goto(`${beta.proc.http}/rooms/${room.id}`)
      const home = await visible(page.getByTestId('room-home-mesh'))
      await waitFor(async () => (await home.textContent()) === 'alpha', 'the header names the home mesh')

      // ---- a DM from alpha's architect: named by its other member, not by a did ----
      const betaArchitect = (await e.keystore.load('beta-architect')).did
      const dm = await cli<{ room: string; name: string }>(
        alpha,
        'dm',
        betaArchitect,
        '--mesh',
        beta.proc.did as string,
      )
      await acceptRoom(cli, beta, dm.room).catch(() => {}) // a DM may admit at once
      await page.goto(`${beta.proc.http}/rooms/${dm.room}`)
      const title = await visible(page.getByTestId('room-title'))
      await waitFor(
        async () => /:alpha/.test((await title.textContent()) ?? ''),
        'the DM is named by its other member',
      )
      const link = page.locator(`[data-testid=room-link][href="/rooms/${dm.room}"]`)
      await waitFor(
        async () => /:alpha/.test((await link.textContent()) ?? ''),
        'the room list names the DM too',
      )
      assert.doesNotMatch((await link.textContent()) ?? '', /dm [A-Za-z0-9]{8}@/)
      const invitation = page.locator(`[data-testid=invitation][data-room="${dm.room}"]`)
      assert.match((await invitation.textContent()) ?? '', /direct message.*from alpha/)
      await shot('url-04-dm-named')
    } catch (err) {
      await shot('url-failure').catch(() => {})
      throw err
    }
  })
})
