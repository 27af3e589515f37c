import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { DelegationList, FederationPolicy } from '../../src/api/index.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { consoleSkip, launchChromium, SHOTS, signInConsole, visible } from '../fixtures/console.ts'
import { type CliMesh, connectionView, e2e, startCliMeshes } from '../fixtures/e2e.ts'

// Issue 13's console (SPEC §9) in Debian's Chromium against real `mesh start` processes:
// pause and resume a link, revoke a delegation, set the history limit — each checked
// through the API — and the same screens at 390 px wide.
/** Whether the page scrolls sideways (what the console adds must fit 390 px). */
function overflowsX(page: Page): Promise<boolean> {
  // A string: the node's type check has no DOM types.
  return page.evaluate('document.documentElement.scrollWidth > window.innerWidth + 1') as Promise<boolean>
}

describe('the console’s room lifecycle screens in Chromium (issue 13)', { skip: consoleSkip }, () => {
  it('pauses and resumes a connection, revokes a delegation (the peer holds it too), sets backfillLimit by PATCH; usable at 390 px', async (t) => {
    let browser: Browser | undefined
    const e = await e2e(t, 'mesh-console-lifecycle-', {
      logLevel: 'warn',
      beforeStop: async () => browser?.close(),
    })
    const ok = e.cli
    const [alpha, beta] = (await startCliMeshes(e, ['alpha', 'beta'])) as [CliMesh, CliMesh]
    const api = (m: CliMesh) => m.api as HttpClient

    // A connection alpha–beta, made through the CLI.
    const c = await ok<{ id: string }>(alpha, 'connect', beta.proc?.listen[0] as string)
    await waitFor(async () => (await connectionView(beta, c.id))?.status === 'pending', 'request at beta')
    await ok(beta, 'accept', c.id)
    await waitFor(async () => (await connectionView(alpha, c.id))?.status === 'accepted', 'accepted')

    // A delegation alpha's architect issues (recorded at alpha) to carol's key.
    const carol = await ok<{ did: string }>(undefined, 'key', 'new', 'carol')
    const grant = await ok<{ cid: string; recorded: boolean }>(
      alpha,
      'delegate',
      carol.did,
      'agent/invoke',
      ...['--agent', 'echo', '--skill', 'echo'],
    )
    assert.equal(grant.recorded, true)

    browser = await launchChromium()
    const open = async (m: CliMesh) => {
      const context = await (browser as Browser).newContext({ viewport: { width: 1400, height: 900 } })
      const page = await context.newPage()
      const errors: string[] = []
      page.on('pageerror', (err) => errors.push(err.message))
      t.after(() => assert.deepEqual(errors, [], `${m.name}: uncaught errors in the page`))
      await signInConsole(page, m.proc?.http as string, join(e.keysDir, `${m.name}-architect.json`))
      return page
    }
    const page = await open(alpha)
    const go = (path: string) => page.goto(`${alpha.proc?.http}${path}`)
    const shot = (what: string) => page.screenshot({ path: join(SHOTS, `${what}.png`), fullPage: true })

    try {
      // ---- pause: a connection/pause act signed in this browser; the row shows `paused` ----
      await go('/connections/connections')
      const row = page.locator('[data-testid=connection-row][data-peer=beta]')
      await visible(row, 30_000)
      await row.getByRole('button', { name: 'Pause the link with beta' }).click()
      await visible(page.locator('[data-testid=connection-row][data-peer=beta][data-status=paused]'))
      await visible(row.getByTestId('paused-note'))
      assert.equal((await connectionView(alpha, c.id))?.status, 'paused')
      await shot('30-connection-paused')

      // ---- resume: back to accepted, through the API too ----
      await row.getByRole('button', { name: 'Resume the link with beta' }).click()
      await page
        .locator('[data-testid=connection-row][data-peer=beta]:not([data-status=paused])')
        .waitFor({ timeout: 20_000 })
      await waitFor(async () => (await connectionView(alpha, c.id))?.status === 'accepted', 'resumed')

      // ---- a pause made elsewhere (the CLI) shows here too ----
      await ok(alpha, 'pause', c.id)
      await visible(page.locator('[data-testid=connection-row][data-peer=beta][data-status=paused]'))
      // A stale page (its list still says accepted) pausing a paused link: the refusal's code, whole.
      const stale = '**/api/connections'
      await page.route(stale, async (route) => {
        const res = await route.fetch()
        const list = (await res.json()) as { id: string; status: string }[]
        await route.fulfill({
          response: res,
          json: list.map((v) => (v.id === c.id ? { ...v, status: 'accepted' } : v)),
        })
      })
      await visible(page.locator('[data-testid=connection-row][data-peer=beta][data-status=accepted]'))
      await row.getByRole('button', { name: 'Pause the link with beta' }).click()
      const conflict = await visible(page.getByTestId('error'))
      assert.equal(await conflict.getAttribute('data-code'), 'MESH_CONFLICT')
      assert.match((await conflict.textContent()) ?? '', /MESH_CONFLICT/)
      await shot('30b-pause-refused')
      await page.unroute(stale)
      await ok(alpha, 'resume', c.id)
      await visible(page.locator('[data-testid=connection-row][data-peer=beta][data-status=accepted]'))
      await page.getByRole('button', { name: 'Dismiss' }).click()

      // ---- delegations: listed live; Revoke signs ucan/revoke here; then revoked, at alpha and at beta ----
      await go('/trust/delegations')
      const delegation = await visible(page.locator(`[data-testid=delegation-row][data-cid="${grant.cid}"]`))
      assert.equal(await delegation.getAttribute('data-state'), 'live')
      await shot('31-delegations')
      await delegation.getByRole('button', { name: `Revoke delegation ${grant.cid}` }).click()
      await page.getByTestId('revoke-reason').fill('carol left')
      await page.getByRole('button', { name: 'Sign and revoke' }).click()
      const revoked = await visible(page.getByTestId('revoked'), 30_000)
      assert.match((await revoked.textContent()) ?? '', /1 peer mesh/)
      await page.getByRole('button', { name: 'Close' }).click()
      await visible(page.locator(`[data-testid=delegation-row][data-cid="${grant.cid}"][data-state=revoked]`))
      await visible(page.locator(`[data-testid=revocation-row][data-cid="${grant.cid}"][data-origin=own]`))
      const atAlpha = await api(alpha).call('listDelegations')
      const listed = atAlpha.delegations.find((d) => d.cid === grant.cid)
      assert.equal(listed?.revoked?.reason, 'carol left')
      assert.ok(atAlpha.revocations.some((r) => r.cid === grant.cid))
      await shot('32-delegation-revoked')
      // A refusal shows its MESH_… code whole: a token that is no delegation.
      await page.getByTestId('record-token').fill('bm90LWEtZGVsZWdhdGlvbg')
      await page.getByRole('button', { name: 'Record', exact: true }).click()
      const refusal = await visible(page.getByTestId('error'))
      assert.match((await refusal.getAttribute('data-code')) ?? '', /^MESH_[A-Z_]+$/)
      assert.match((await refusal.textContent()) ?? '', /MESH_[A-Z_]+/)
      // beta holds alpha's signed notice and shows it as a peer's revocation.
      await waitFor(
        async () =>
          ((await api(beta).call('listDelegations')) as DelegationList).revocations.some(
            (r) => r.cid === grant.cid && r.mesh === alpha.did,
          ),
        'the revocation at beta',
      )
      const betaPage = await open(beta)
      await betaPage.goto(`${beta.proc?.http}/trust/delegations`)
      await visible(
        betaPage.locator(`[data-testid=revocation-row][data-cid="${grant.cid}"][data-origin=peer]`),
      )
      await betaPage.screenshot({ path: join(SHOTS, '33-peer-revocation.png'), fullPage: true })
      await betaPage.context().close()

      // ---- history limit: only new (0), then the last 25, then all — each a PATCH of that field only ----
      const before = await api(alpha).call('getPolicy')
      assert.equal(before.backfillLimit, null)
      const patches: unknown[] = []
      page.on('request', (r) => {
        if (r.method() === 'PATCH' && r.url().endsWith('/api/federation/policy'))
          patches.push(r.postDataJSON())
      })
      await go('/trust/policy')
      const limit = await visible(page.getByTestId('backfill-limit'))
      const save = async (expected: number | null) => {
        await page.getByRole('button', { name: 'Save policy' }).click()
        await visible(page.getByTestId('policy-saved'))
        const stored: FederationPolicy = await api(alpha).call('getPolicy')
        assert.deepEqual(stored, { ...before, backfillLimit: expected })
      }
      await limit.getByText('Only new', { exact: true }).click()
      await save(0)
      await limit.getByText('Last N', { exact: true }).click()
      await page.getByTestId('backfill-count').fill('25')
      await save(25)
      await shot('34-policy-backfill')
      await limit.getByText('All', { exact: true }).click()
      await save(null)
      assert.deepEqual(patches, [{ backfillLimit: 0 }, { backfillLimit: 25 }, { backfillLimit: null }])
      // Nothing changed: nothing to save.
      assert.equal(await page.getByRole('button', { name: 'Save policy' }).isDisabled(), true)

      // ---- 390 px wide: each screen fits (tables scroll inside themselves), and its buttons work ----
      const second = await ok<{ cid: string }>(
        alpha,
        'delegate',
        carol.did,
        'agent/invoke',
        ...['--agent', 'echo', '--skill', 'echo'],
      )
      await page.setViewportSize({ width: 390, height: 844 })
      for (const [path, what, mark] of [
        ['/connections/connections', '35-narrow-connections', '[data-testid=connection-row]'],
        ['/trust/delegations', '36-narrow-delegations', '[data-testid=delegation-row]'],
        ['/trust/policy', '37-narrow-policy', '[data-testid=backfill-limit]'],
      ] as const) {
        await go(path)
        await visible(page.locator(mark))
        assert.equal(await overflowsX(page), false, `${path} scrolls sideways at 390 px`)
        await shot(what)
      }
      // The header keeps its buttons in view (issue 14), and the page has an icon.
      const signOut = await visible(page.getByRole('button', { name: 'Sign out' }))
      const box = await signOut.boundingBox()
      assert.ok(
        box !== null && box.x + box.width <= 390,
        `Sign out is in view at 390 px: ${JSON.stringify(box)}`,
      )
      assert.match(
        (await page.locator('link[rel=icon]').getAttribute('href')) ?? '',
        /^data:image\/svg\+xml,/,
      )
      await go('/connections/connections')
      const pause = await visible(row.getByRole('button', { name: 'Pause the link with beta' }))
      assert.ok(((await pause.boundingBox())?.x ?? 999) + 20 < 390, 'Pause is in view at 390 px')
      await pause.click()
      await visible(page.locator('[data-testid=connection-row][data-peer=beta][data-status=paused]'))
      await row.getByRole('button', { name: 'Resume the link with beta' }).click()
      await waitFor(
        async () => (await connectionView(alpha, c.id))?.status === 'accepted',
        'resumed at 390 px',
      )
      await go('/trust/delegations')
      const card = await visible(page.locator(`[data-testid=delegation-row][data-cid="${second.cid}"]`))
      const revoke = card.getByRole('button', { name: `Revoke delegation ${second.cid}` })
      assert.ok(((await revoke.boundingBox())?.x ?? 999) + 20 < 390, 'Revoke is in view at 390 px')
      await revoke.click()
      await page.getByRole('button', { name: 'Sign and revoke' }).click()
      await visible(page.getByTestId('revoked'), 30_000)
      await page.getByRole('button', { name: 'Close' }).click()
      await visible(
        page.locator(`[data-testid=delegation-row][data-cid="${second.cid}"][data-state=revoked]`),
      )
      const revokedAtAlpha = await api(alpha).call('listDelegations')
      assert.notEqual(revokedAtAlpha.delegations.find((d) => d.cid === second.cid)?.revoked, null)
      await shot('38-narrow-revoked')
    } catch (err) {
      await shot('failure-lifecycle').catch(() => undefined)
      throw err
    }
  })
})
