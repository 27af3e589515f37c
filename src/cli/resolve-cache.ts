/**
 * Issue 15 (cold start): module resolutions kept from one run of `mesh` to the next,
 * beside V8's compile cache. A start resolves some 3,600 specifiers (the node's ~1,300
 * modules), and Node finds each by walking the disk: stat calls, package.json reads up
 * the tree, `exports` maps, the module's format — about a fifth of a start's CPU. Here a
 * resolution Node made once is answered from a file the next time: the same URL and the
 * same format Node gave, for the same parent, specifier, conditions and import
 * attributes. What Node resolves anew (a module first loaded after an upgrade, a new
 * import) goes to Node and is added to the file when the process exits.
 *
 * The file is only used while nothing it depends on changed: its stamp is the Node
 * version, the project's root, and the size and modification time of its package.json,
 * package-lock.json and node_modules/.package-lock.json (npm rewrites that on every
 * install). A module the file names that no longer loads (a source file deleted) drops
 * the file, so the next run resolves afresh; `MESH_RESOLVE_CACHE=0` turns it off.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { getCompileCacheDir, type ResolveHookContext, registerHooks } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

type Entry = [url: string, format: string | null | undefined]

interface CacheFile {
  stamp: string
  entries: Record<string, Entry>
}

/** What the stamp is made of: anything that could make Node resolve a specifier differently. */
function stampOf(root: string): string {
  const parts = [process.version, root]
  for (const file of ['package.json', 'package-lock.json', 'node_modules/.package-lock.json']) {
    try {
      const s = statSync(join(root, file))
      parts.push(`${file}:${s.size}:${s.mtimeMs}`)
    } catch {
      parts.push(`${file}:-`)
    }
  }
  return parts.join('|')
}

function keyOf(specifier: string, context: ResolveHookContext): string {
  const attributes = context.importAttributes
  const attrs =
    attributes === undefined || Object.keys(attributes).length === 0 ? '' : JSON.stringify(attributes)
  return `${context.parentURL ?? ''}\n${specifier}\n${context.conditions?.join(',') ?? ''}\n${attrs}`
}

/**
 * Answers module resolutions from the cache file for `rootUrl`'s project (a directory URL
 * ending in `/`), and records Node's answers for the next run. Returns where the file is,
 * or undefined when it is off (no compile cache directory, or `MESH_RESOLVE_CACHE=0`).
 */
export function cacheResolutions(rootUrl: URL, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = getCompileCacheDir()
  if (dir === undefined || env.MESH_RESOLVE_CACHE === '0') return undefined
  const root = fileURLToPath(rootUrl)
  const file = join(dir, `mesh-resolve-${createHash('sha256').update(root).digest('hex').slice(0, 16)}.json`)
  const stamp = stampOf(root)
  let entries: Record<string, Entry> = {}
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as CacheFile
    // Every key holds line breaks, so none is an Object.prototype name.
    if (cached?.stamp === stamp && typeof cached.entries === 'object' && cached.entries !== null) {
      entries = cached.entries
    }
  } catch {
    // none yet, or unreadable: resolve afresh
  }
  const answered = new Set<string>()
  let added = 0
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const key = keyOf(specifier, context)
      const hit = entries[key]
      if (Array.isArray(hit) && typeof hit[0] === 'string') {
        answered.add(hit[0])
        return hit[1] == null
          ? { url: hit[0], shortCircuit: true }
          : { url: hit[0], format: hit[1], shortCircuit: true }
      }
      const result = nextResolve(specifier, context)
      if (result.url.startsWith('file:')) {
        entries[key] = [result.url, result.format]
        added++
      }
      return result
    },
    load(url, context, nextLoad) {
      try {
        return nextLoad(url, context)
      } catch (err) {
        // A module the file named is gone: drop the file; this run fails as it would have.
        if (answered.has(url)) {
          rmSync(file, { force: true })
          added = 0
        }
        throw err
      }
    },
  })
  process.once('exit', () => {
    if (added === 0) return
    try {
      mkdirSync(dir, { recursive: true })
      const tmp = `${file}.${process.pid}`
      writeFileSync(tmp, JSON.stringify({ stamp, entries } satisfies CacheFile))
      renameSync(tmp, file)
    } catch {
      // a cache: the next run resolves afresh
    }
  })
  return file
}
