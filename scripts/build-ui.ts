/**
 * Builds the web console (src/ui → dist/ui) when its sources are newer than the last
 * build; runs on `npm install` (prepare), before `npm test` and `npm start`. `--force`
 * always builds. Without Vite (a production install) it says so and leaves the node to
 * serve its "console not built" page.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const uiDir = join(root, 'src', 'ui')
const outIndex = join(root, 'dist', 'ui', 'index.html')

function newest(path: string): number {
  const info = statSync(path)
  if (!info.isDirectory()) return info.mtimeMs
  let max = info.mtimeMs
  for (const name of readdirSync(path)) {
    if (name === 'node_modules' || name === 'dist') continue
    max = Math.max(max, newest(join(path, name)))
  }
  return max
}

const force = process.argv.includes('--force')
const sources = Math.max(newest(uiDir), newest(join(root, 'package-lock.json')))
if (!force && existsSync(outIndex) && statSync(outIndex).mtimeMs >= sources) {
  console.log('console: dist/ui is up to date')
  process.exit(0)
}

let vite: typeof import('vite')
try {
  vite = await import('vite')
} catch {
  console.warn('console: vite is not installed (production install?); the node serves a "not built" page')
  process.exit(0)
}
const started = Date.now()
await vite.build({ configFile: join(uiDir, 'vite.config.ts'), logLevel: 'warn' })
console.log(`console: built dist/ui in ${Date.now() - started} ms`)
