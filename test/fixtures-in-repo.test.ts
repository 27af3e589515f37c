import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { it } from 'node:test'
import { fileURLToPath } from 'node:url'

// Issue 14: `npm test` on a bare clone failed two tests that read `../shared/fixtures/`. Every
// file a test reads is in the repository: no test or script names a path outside it.
const ROOT = fileURLToPath(new URL('..', import.meta.url))

async function* sources(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* sources(path)
    else if (/\.(ts|tsx|js|mjs|json)$/.test(entry.name)) yield path
  }
}

it('no test or script reads outside the repository (../shared, /work/…)', async () => {
  const outside: string[] = []
  for (const dir of ['test', 'scripts']) {
    for await (const file of sources(join(ROOT, dir))) {
      if (file === fileURLToPath(import.meta.url)) continue
      const text = await readFile(file, 'utf8')
      if (/\.\.\/shared\/|['"`]\/work\//.test(text)) outside.push(relative(ROOT, file))
    }
  }
  assert.deepEqual(outside, [])
})
