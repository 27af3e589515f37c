import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Browser } from 'playwright-core'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { TaskView } from '../../src/api/index.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import {
  consolePage,
  consoleSkip,
  launchChromium,
  SHOTS,
  signInConsole,
  visible,
} from '../fixtures/console.ts'
import { e2e, startCliMeshes } from '../fixtures/e2e.ts'

// Tasks across meshes (SPEC §13): a room's task board in Debian's Chromium against a real `mesh start`.

describe('the console’s task board in Chromium', { skip: consoleSkip }, () => {
  it('adds a task, assigns it to a member, comments on it, moves it across the columns', async (t) => {
    let browser: Browser | undefined
    const e = await e2e(t, 'mesh-console-tasks-', {
      logLevel: 'warn',
      beforeStop: async () => browser?.close(),
    })
    const [alpha] = await startCliMeshes(e, ['alpha'])
    const http = alpha?.proc?.http as string
    const api = alpha?.api as HttpClient
    const room = (await api.post<{ id: string }>('/api/rooms', { name: 'work' })).id
    browser = await launchChromium()
    const page = await consolePage(t, browser, { width: 1400, height: 1000 })

    try {
      await signInConsole(page, http, join(e.keysDir, 'alpha-architect.json'))
      await page.getByRole('link', { name: 'Rooms' }).click()
      await page.locator('[data-testid=room-link][data-name=work]').click()

      // Add a task: it lands in Open.
      const board = await visible(page.getByTestId('task-board'))
      await board.getByTestId('task-title').fill('Write the release notes')
      await board.getByTestId('task-add').click()
      const card = await visible(page.locator('[data-testid=task-column-open] [data-testid=task]'))
      assert.match((await card.textContent()) ?? '', /Write the release notes/)
      assert.match((await card.getByTestId('task-assignee').textContent()) ?? '', /unassigned/)

      // Assign it to the architect (the room's one member), by name.
      await card.getByTestId('task-assign').click()
      await page.getByRole('option', { name: '@alpha-architect' }).click()
      await waitFor(
        async () => /@alpha-architect/.test((await card.getByTestId('task-assignee').textContent()) ?? ''),
        'the card shows its assignee',
      )

      // Comment on it (Enter sends).
      await card.getByTestId('task-comment-input').fill('draft is in the wiki')
      await card.getByTestId('task-comment-input').press('Enter')
      const note = await visible(card.getByTestId('task-comment'))
      assert.match((await note.textContent()) ?? '', /@alpha-architect\s*draft is in the wiki/)

      // Move it to Doing, then Done.
      for (const [label, column] of [
        ['Doing', 'doing'],
        ['Done', 'done'],
      ] as const) {
        await page.locator('[data-testid=task] [data-testid=task-move]').first().click()
        await page.getByRole('option', { name: label, exact: true }).click()
        await visible(page.locator(`[data-testid=task-column-${column}] [data-testid=task]`))
      }
      await page.screenshot({ path: join(SHOTS, 'console-tasks.png'), fullPage: true })

      // The node holds what the board shows.
      const { tasks } = await api.get<{ tasks: TaskView[] }>(`/api/rooms/${room}/tasks`)
      assert.equal(tasks.length, 1)
      assert.equal(tasks[0]?.status, 'done')
      assert.equal(tasks[0]?.assignee?.name, '@alpha-architect')
      assert.deepEqual(
        tasks[0]?.comments.map((c) => c.body),
        ['draft is in the wiki'],
      )
    } catch (err) {
      await page.screenshot({ path: join(SHOTS, 'console-tasks-failed.png'), fullPage: true }).catch(() => {})
      throw err
    }
  })
})
