import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core'
import type { MeshProcess } from '../../scripts/lib/processes.ts'
import { e2e, FAST_RETRY } from '../fixtures/e2e.ts'

// Debian's Chromium (installed by .ci/run); never a browser downloaded by playwright.
const CHROMIUM = process.env.MESH_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
]
const SHOTS = new URL('../../test-output/screenshots/', import.meta.url).pathname
const CONSOLE_BUILT = existsSync(new URL('../../dist/ui/index.html', import.meta.url))
const INTERVAL = '500'

interface Mesh {
  name: string
  dir: string
  proc: MeshProcess
  page: Page
  context: BrowserContext
}

const skip = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set MESH_CHROMIUM)`
  : !CONSOLE_BUILT
    ? 'the console is not built (npm run build:ui)'
    : false

/** Waits until `locator` (its first match) is visible. */
async function visible(locator: Locator, timeout = 20_000): Promise<Locator> {
  await locator.first().waitFor({ state: 'visible', timeout })
  return locator.first()
}

describe('the web console in Chromium, two meshes in two processes', { skip }, () => {
  it('sign in, Browse → request, Requests → accept, share a room, live chat both ways, 🌐 foreign participants, refused acts show their code', async (t) => {
    let browser: Browser | undefined
    const {
      root,
      keysDir: keystore,
      start,
      init,
      registry: startRegistry,
    } = await e2e(t, 'mesh-console-e2e-', { logLevel: 'warn', beforeStop: async () => browser?.close() })
    await mkdir(SHOTS, { recursive: true })

    const registry = await startRegistry('127.0.0.1:0', INTERVAL)
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })

    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta']) {
      const dir = join(root, name)
      await init(name, dir)
      const proc = await start([
        'start',
        ...['--data', dir, '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'],
        ...['--registry', registry.http, '--public'],
        ...['--discovery-interval', INTERVAL, '--heartbeat-interval', INTERVAL],
        ...['--probe-interval', '1000', '--sync-interval', '300', ...FAST_RETRY],
      ])
      // Separate contexts: separate storage, as two people on two machines.
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } })
      const page = await context.newPage()
      const errors: string[] = []
      page.on('pageerror', (err) => errors.push(err.message))
      t.after(() => assert.deepEqual(errors, [], `${name}: uncaught errors in the page`))
      meshes.push({ name, dir, proc, page, context })
    }
    const [alpha, beta] = meshes as [Mesh, Mesh]
    const shot = (m: Mesh, what: string) =>
      m.page.screenshot({ path: join(SHOTS, `${what}.png`), fullPage: true })
    const go = (m: Mesh, path: string) => m.page.goto(`${m.proc.http}${path}`)

    try {
      // ---- sign in: each architect imports their key file; the page signs the challenge ----
      for (const m of meshes) {
        await go(m, '/')
        await visible(m.page.getByRole('heading', { name: 'Sign in to this mesh' }))
        if (m === alpha) await shot(m, '01-sign-in')
        await m.page.locator('input[type=file]').setInputFiles(join(keystore, `${m.name}-architect.json`))
        await visible(m.page.getByTestId('key-did'))
        await m.page.getByRole('button', { name: 'Sign in', exact: true }).click()
        const title = await visible(m.page.getByTestId('mesh-name'))
        assert.equal(await title.textContent(), m.name)
        assert.match((await m.page.getByTestId('signed-in-as').textContent()) ?? '', /architect/)
      }

      // ---- alpha: Browse lists beta (registry + discovery) and requests a connection ----
      await alpha.page.getByRole('link', { name: 'Connections' }).click()
      await alpha.page.getByRole('tab', { name: 'Browse' }).click()
      const betaRow = await visible(alpha.page.locator('[data-testid=mesh-row][data-name=beta]'), 30_000)
      assert.match((await betaRow.textContent()) ?? '', /online|idle/)
      await shot(alpha, '02-connections-browse')
      await alpha.page.getByRole('button', { name: 'Request a connection with beta' }).click()
      await alpha.page.getByLabel('Note to their architect (optional)').fill('hello from alpha')
      await alpha.page.getByRole('button', { name: 'Sign and send request' }).click()
      await visible(alpha.page.getByTestId('request-sent'))
      await alpha.page.getByRole('button', { name: 'Close' }).click()
      await alpha.page.getByRole('tab', { name: 'Requests' }).click()
      await visible(alpha.page.locator('[data-testid=outbound-request][data-peer=beta]'))

      // ---- beta: Requests shows it inbound; accept (signed in beta's browser) ----
      await go(beta, '/connections/requests')
      const inbound = await visible(
        beta.page.locator('[data-testid=inbound-request][data-peer=alpha]'),
        30_000,
      )
      assert.match((await inbound.textContent()) ?? '', /hello from alpha/)
      await shot(beta, '03-connections-requests')
      // Accepting is confirmed first (issue 14): nothing is signed until the dialog says so.
      await inbound.getByRole('button', { name: 'Accept' }).click()
      const confirmAccept = await visible(beta.page.getByRole('dialog', { name: 'Connect with alpha?' }))
      await confirmAccept.getByRole('button', { name: 'Sign and accept' }).click()
      await beta.page.getByRole('tab', { name: 'Connections' }).click()
      await visible(beta.page.locator('[data-testid=connection-row][data-peer=alpha] [data-status=accepted]'))

      // ---- alpha: Connections shows beta accepted, with its health ----
      await alpha.page.getByRole('tab', { name: 'Connections' }).click()
      const row = await visible(
        alpha.page.locator('[data-testid=connection-row][data-peer=beta]:has([data-status=accepted])'),
        30_000,
      )
      assert.match((await row.textContent()) ?? '', /outbound/)
      await shot(alpha, '04-connections-connections')

      // ---- Browse matches the connection state (issue 14): a connected mesh offers no request ----
      await alpha.page.getByRole('tab', { name: 'Browse' }).click()
      const betaAction = await visible(
        alpha.page.locator('[data-testid=mesh-row][data-name=beta] [data-testid=browse-action]'),
      )
      assert.equal(await betaAction.getAttribute('data-action'), 'connected')
      assert.equal(
        await alpha.page.getByRole('button', { name: 'Request a connection with beta' }).count(),
        0,
      )
      await shot(alpha, '05-browse-connected')

      // ---- alpha: a room; the policy refuses a share beyond its limit; then shares it ----
      await alpha.page.getByRole('link', { name: 'Rooms' }).click()
      await alpha.page.getByLabel('Room name').fill('general')
      await alpha.page.getByLabel('Topic').fill('alpha and beta')
      await alpha.page.getByRole('button', { name: 'Create room' }).click()
      await visible(alpha.page.getByRole('heading', { name: '# general' }))
      await visible(alpha.page.locator('[data-testid=link-status][data-state=live]'))
      const alphaComposer = alpha.page.getByLabel('Message', { exact: true })
      await alphaComposer.fill('hello from alpha')
      await alphaComposer.press('Enter')
      await visible(alpha.page.locator('[data-testid=message]', { hasText: 'hello from alpha' }))

      await go(alpha, '/trust/policy')
      const limit = await visible(alpha.page.getByLabel('Foreign participants per room, at most'))
      await limit.fill('0')
      await alpha.page.getByRole('button', { name: 'Save policy' }).click()
      await visible(alpha.page.getByTestId('policy-saved'))
      await shot(alpha, '06-trust-policy')

      await go(alpha, '/rooms')
      await alpha.page.locator('[data-testid=room-link][data-name=general]').click()
      const share = async () => {
        await alpha.page.getByRole('combobox', { name: 'Mesh' }).click()
        await alpha.page.getByRole('option', { name: /beta/ }).click()
        await alpha.page.getByRole('button', { name: 'Sign and share' }).click()
      }
      await share()
      const policyRefusal = await visible(
        alpha.page.getByTestId('error').filter({ hasText: 'MESH_POLICY_REJECTED' }),
      )
      assert.equal(await policyRefusal.getAttribute('data-code'), 'MESH_POLICY_REJECTED')
      await shot(alpha, '07-refused-policy')

      await go(alpha, '/trust/policy')
      await (await visible(alpha.page.getByLabel('Foreign participants per room, at most'))).fill('50')
      await alpha.page.getByRole('button', { name: 'Save policy' }).click()
      await visible(alpha.page.getByTestId('policy-saved'))
      await go(alpha, '/rooms')
      await alpha.page.locator('[data-testid=room-link][data-name=general]').click()
      await share()
      await visible(alpha.page.getByTestId('shared'))

      // ---- beta: the share is an invitation (SPEC §9); beta's architect accepts it by a signed act ----
      await beta.page.getByRole('link', { name: 'Rooms' }).click()
      const invitation = await visible(
        beta.page.locator('[data-testid=invitation][data-name=general][data-status=pending]'),
        30_000,
      )
      await shot(beta, '07b-room-invitation')
      await invitation.getByRole('button', { name: 'Accept' }).click()
      await visible(beta.page.getByTestId('answered'))
      await visible(
        alpha.page.locator('[data-testid=room-link][data-name=general][data-federated=true]'),
        30_000,
      )

      // ---- beta: the room arrives federated (🌐); alpha's messages show as @id:mesh-name 🌐 ----
      const betaRoom = await visible(
        beta.page.locator('[data-testid=room-link][data-name=general][data-federated=true]'),
        30_000,
      )
      assert.equal(await betaRoom.getByTestId('federated-badge').count(), 1)
      await betaRoom.click()
      const fromAlpha = await visible(
        beta.page.locator('[data-testid=message][data-author="@alpha-architect:alpha"]', {
          hasText: 'hello from alpha',
        }),
        30_000,
      )
      assert.equal(await fromAlpha.getByTestId('federated-badge').count(), 1)
      await visible(beta.page.locator('[data-testid=link-status][data-state=live]'), 30_000)

      // ---- live both ways: typed in one browser, shown in the other ----
      const betaComposer = beta.page.getByLabel('Message', { exact: true })
      await betaComposer.fill('hi from beta')
      await betaComposer.press('Enter')
      const fromBeta = await visible(
        alpha.page.locator('[data-testid=message][data-author="@beta-architect:beta"]', {
          hasText: 'hi from beta',
        }),
        30_000,
      )
      assert.equal(await fromBeta.getByTestId('federated-badge').count(), 1)
      assert.equal(await fromBeta.getAttribute('data-foreign'), 'true')

      await alphaComposer.fill('welcome @beta-architect:beta')
      await alphaComposer.press('Enter')
      await visible(
        beta.page.locator('[data-testid=message]', { hasText: 'welcome @beta-architect:beta' }),
        30_000,
      )
      // The mention lands on beta (the mentioned user's home mesh).
      await visible(beta.page.getByTestId('notifications').getByText('welcome @beta-architect:beta'), 30_000)
      // Members: beta's architect is a foreign participant in alpha's view.
      await visible(alpha.page.locator('[data-testid=member][data-name="@beta-architect:beta"]'), 30_000)
      await visible(alpha.page.getByTestId('sync'))
      await shot(alpha, '08-rooms-alpha')
      await shot(beta, '09-rooms-beta')

      // ---- trust and audit: each tab renders (trust may not be served yet: a readable state) ----
      await go(alpha, '/trust/trust')
      await visible(alpha.page.getByRole('tab', { name: 'Trust', exact: true, selected: true }))
      await shot(alpha, '10-trust-trust')
      // ---- trust: alpha's architect promotes beta's architect to tier 3 by a UCAN signed in the browser ----
      const betaArchitect = (
        JSON.parse(await readFile(join(keystore, 'beta-architect.json'), 'utf8')) as { did: string }
      ).did
      await alpha.page.getByTestId('promote-did').fill(betaArchitect)
      await alpha.page.getByTestId('promote-reason').fill('a good month of shared rooms')
      await alpha.page.getByRole('button', { name: 'Sign and set tier' }).click()
      const promoted = await visible(alpha.page.getByTestId('promoted'), 30_000)
      assert.match((await promoted.textContent()) ?? '', /tier 3/)
      await visible(alpha.page.getByRole('table').getByText('a good month of shared rooms'), 15_000)
      await shot(alpha, '10b-trust-promoted')
      await go(beta, '/trust/rejected')
      await visible(beta.page.getByRole('tab', { name: 'Rejected', selected: true }))
      await shot(beta, '11-trust-rejected')
      await go(alpha, '/trust/audit')
      const verified = await visible(alpha.page.locator('[data-testid=audit-verify] [data-ok=true]'))
      assert.equal(await verified.textContent(), 'verified')
      await visible(alpha.page.getByTestId('audit').getByText('federation.policy.changed').first())
      // Names, not dids (issue 14): beta's architect, promoted above, is named in the
      // trust.promoted row (as `@beta-architect:beta`, met in the shared room).
      const named = await visible(
        alpha.page.locator(`[data-testid=audit] [data-did="${betaArchitect}"]`).first(),
      )
      assert.equal(await named.textContent(), '@beta-architect:beta')
      await shot(alpha, '12-trust-audit')

      // ---- the federation picture: beta is a connected node of alpha's graph ----
      await alpha.page.getByRole('link', { name: 'Federation' }).click()
      await visible(alpha.page.locator('[data-testid=graph-node][data-name=beta]'))
      // (a vertical line has an empty bounding box: attached, not "visible")
      await alpha.page
        .locator('[data-testid=graph-edge][data-link=accepted]')
        .first()
        .waitFor({ state: 'attached' })
      await visible(alpha.page.getByTestId('traffic-chart'), 30_000)
      await shot(alpha, '13-federation')

      // ---- room lifecycle (SPEC §9): alpha unshares general by a signed act; both sides mark it ----
      await go(alpha, '/rooms')
      await alpha.page.locator('[data-testid=room-link][data-name=general]').click()
      await (await visible(alpha.page.getByTestId('unshare'))).click()
      await visible(alpha.page.getByTestId('share-ended'))
      await visible(alpha.page.locator('[data-testid=room-share][data-state="ended (unshare)"]'), 15_000)
      await go(beta, '/rooms')
      await beta.page.locator('[data-testid=room-link][data-name=general]').click()
      await visible(beta.page.locator('[data-testid=room-share][data-state="ended (unshare)"]'), 30_000)
      await shot(beta, '14-room-unshared')
    } catch (err) {
      for (const m of meshes) {
        await shot(m, `failure-${m.name}`).catch(() => undefined)
        const bad = m.proc.logs.filter((l) => typeof l.level === 'number' && l.level >= 50)
        if (bad.length > 0) t.diagnostic(`${m.name} errors: ${JSON.stringify(bad.slice(-5))}`)
      }
      throw err
    }
  })
})
