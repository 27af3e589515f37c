import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { type Browser, chromium } from 'playwright-core'
import { cidOf } from '../../src/files/index.ts'
import { CHROMIUM, CHROMIUM_ARGS, consoleSkip } from '../fixtures/chromium.ts'
import { e2e } from '../fixtures/e2e.ts'

const skip = consoleSkip()

/** An 8×8 red PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC',
  'base64',
)

describe('files in the console, in Chromium (issue 18)', { skip }, () => {
  it('attach in the composer, the image previewed in the chat, downloaded with its name', async (t) => {
    let browser: Browser | undefined
    const e = await e2e(t, 'mesh-console-files-', {
      logLevel: 'warn',
      beforeStop: async () => browser?.close(),
    })
    const dir = await e.init('alpha')
    const proc = await e.start([
      'start',
      '--data',
      dir,
      '--http',
      '127.0.0.1:0',
      '--discovery-interval',
      '60000',
    ])
    const room = await e.cli<{ id: string }>({ dir }, 'room', 'create', 'pictures')
    const png = join(e.root, 'red.png')
    await writeFile(png, PNG)

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    const context = await browser.newContext({ acceptDownloads: true })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    await page.goto(`${proc.http}/`)
    await page.locator('input[type=file]').setInputFiles(join(e.keysDir, 'alpha-architect.json'))
    await page.getByTestId('key-did').waitFor()
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByTestId('mesh-name').waitFor()
    await page.goto(`${proc.http}/rooms/${room.id}`)
    await page.getByTestId('composer').waitFor()

    // Attach: the file is uploaded at once and shown in the composer; Send posts it.
    await page.locator('input[type=file]').setInputFiles(png)
    await page.getByTestId('attached').filter({ hasText: 'red.png' }).waitFor()
    await page.getByTestId('composer').fill('a red square')
    await page.getByRole('button', { name: 'Send' }).click()

    const attachment = page.locator(`[data-testid=attachment][data-cid="${cidOf(PNG)}"]`)
    await attachment.waitFor({ timeout: 30_000 })
    const preview = attachment.getByTestId('preview')
    await preview.waitFor()
    await page.waitForFunction(
      (el) => {
        const img = el as unknown as { complete: boolean; naturalWidth: number }
        return img.complete && img.naturalWidth === 8
      },
      await preview.elementHandle(),
    )
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      attachment.getByTestId('download').click(),
    ])
    assert.equal(download.suggestedFilename(), 'red.png')
    const saved = join(e.root, 'saved.png')
    await download.saveAs(saved)
    assert.ok((await readFile(saved)).equals(PNG))
    assert.deepEqual(errors, [])
  })
})
