/**
 * Holds the real imports of `src/` against the module map in `architecture/parts.json`.
 *
 * Pure: it takes the files as (path, text) pairs, so the test can run it on the real tree and on a
 * small made-up tree that breaks each rule on purpose.
 */
import { builtinModules } from 'node:module'
import { posix } from 'node:path'
import { type ImportKind, scanImports } from './scan-imports.ts'

export interface Part {
  /** Folders (ending in `/`) and single files, relative to the repository root. */
  is: string[]
  says: string
}

/** An arrow the map allows for now though the target forbids it; `to` is a file or a package name. */
export interface PendingArrow {
  from: string
  to: string
  why: string
}

export interface ArchitectureMap {
  parts: Record<string, Part>
  /** [from, to]: parts that may import from one another, in that direction only. */
  arrows: Array<[string, string]>
  /** [from, to, why]: arrows that must never exist. */
  never: Array<[string, string, string]>
  /** Packages that may be imported only from the files of these parts (`fastify` → Http). */
  packagesOnlyIn?: Array<{ packages: string[]; parts: string[]; why: string }>
  /** Parts that must stay loadable in a browser: no Node built-ins, no node-only packages. */
  browserSafe?: { parts: string[]; nodeOnlyPackages: string[]; why: string }
  pending?: PendingArrow[]
}

export interface SourceFile {
  /** Relative to the repository root, forward slashes: `src/rooms/room.ts`. */
  path: string
  text: string
}

export type Rule = 'map' | 'unmapped' | 'unresolved' | 'arrow' | 'never' | 'package' | 'browser' | 'pending'

export interface Violation {
  rule: Rule
  from: string
  /** The imported file, or the package specifier. */
  to: string
  message: string
}

export interface CheckResult {
  /** Violations not excused by a pending entry. */
  violations: Violation[]
  /** Violations a pending entry excuses, for the record. */
  excused: Violation[]
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
export function packageName(specifier: string): string {
  const segments = specifier.split('/')
  return specifier.startsWith('@') ? segments.slice(0, 2).join('/') : (segments[0] as string)
}

const nodeBuiltins = new Set(builtinModules)
const isNodeBuiltin = (specifier: string): boolean =>
  specifier.startsWith('node:') || nodeBuiltins.has(packageName(specifier))

/** Matches a package name against `fastify`, `@fastify/*`, `node:*` style patterns. */
function matchesPackage(specifier: string, patterns: string[]): boolean {
  const name = packageName(specifier)
  return patterns.some((p) => (p.endsWith('/*') ? name.startsWith(p.slice(0, -1)) : name === p))
}

/** The parts a file belongs to; more than one is a fault of the map. */
function partsOf(path: string, map: ArchitectureMap): string[] {
  return Object.entries(map.parts)
    .filter(([, part]) =>
      part.is.some((entry) => (entry.endsWith('/') ? path.startsWith(entry) : path === entry)),
    )
    .map(([name]) => name)
}

/** Resolves a relative specifier the way Node (type stripping) and vite do, against the known files. */
function resolve(from: string, specifier: string, known: Set<string>): string | undefined {
  const base = posix.normalize(posix.join(posix.dirname(from), specifier))
  const candidates = [base, `${base}.ts`, `${base}.tsx`, `${base}/index.ts`, `${base}/index.tsx`]
  if (base.endsWith('.js')) candidates.push(`${base.slice(0, -3)}.ts`, `${base.slice(0, -3)}.tsx`)
  return candidates.find((c) => known.has(c))
}

/** Faults in the map itself: unknown part names, an arrow both allowed and forbidden. */
function checkMap(map: ArchitectureMap): Violation[] {
  const faults: Violation[] = []
  const fault = (message: string): void => {
    faults.push({ rule: 'map', from: 'architecture/parts.json', to: '', message })
  }
  const named = (name: string, where: string): void => {
    if (!(name in map.parts)) fault(`${where} names unknown part "${name}"`)
  }
  for (const [from, to] of map.arrows) {
    named(from, 'arrow')
    named(to, 'arrow')
  }
  for (const [from, to] of map.never) {
    named(from, 'never')
    named(to, 'never')
    if (map.arrows.some(([f, t]) => f === from && t === to))
      fault(`${from} → ${to} is both allowed and never`)
  }
  for (const rule of map.packagesOnlyIn ?? []) for (const p of rule.parts) named(p, 'packagesOnlyIn')
  for (const p of map.browserSafe?.parts ?? []) named(p, 'browserSafe')
  return faults
}

export function checkArchitecture(files: SourceFile[], map: ArchitectureMap): CheckResult {
  const found: Violation[] = [...checkMap(map)]
  const known = new Set(files.map((f) => f.path))
  const partOf = new Map<string, string>()
  for (const file of files) {
    const parts = partsOf(file.path, map)
    if (parts.length === 1) partOf.set(file.path, parts[0] as string)
    else {
      found.push({
        rule: 'unmapped',
        from: file.path,
        to: '',
        message:
          parts.length === 0
            ? `${file.path} belongs to no part: add its folder to a part in architecture/parts.json`
            : `${file.path} belongs to ${parts.length} parts (${parts.join(', ')}): a file has one home`,
      })
    }
  }
  const allowed = new Set(map.arrows.map(([f, t]) => `${f}→${t}`))
  const never = new Map(map.never.map(([f, t, why]) => [`${f}→${t}`, why]))
  const browserSafe = new Set(map.browserSafe?.parts ?? [])
  // One report per (file, target, rule): a file importing twice from one module is one arrow.
  const seen = new Set<string>()
  const report = (v: Violation): void => {
    const key = `${v.rule}|${v.from}|${v.to}`
    if (!seen.has(key)) {
      seen.add(key)
      found.push(v)
    }
  }
  const how = (kind: ImportKind, line: number): string => `(${kind} import, line ${line})`

  for (const file of files) {
    const fromPart = partOf.get(file.path)
    for (const { specifier, kind, line } of scanImports(file.text)) {
      if (specifier.startsWith('.')) {
        const target = resolve(file.path, specifier, known)
        if (target === undefined) {
          report({
            rule: 'unresolved',
            from: file.path,
            to: specifier,
            message: `${file.path} imports '${specifier}', which is no file under src ${how(kind, line)}`,
          })
          continue
        }
        const toPart = partOf.get(target)
        if (fromPart === undefined || toPart === undefined || fromPart === toPart) continue
        const arrow = `${fromPart} → ${toPart}`
        const why = never.get(`${fromPart}→${toPart}`)
        if (why !== undefined) {
          report({
            rule: 'never',
            from: file.path,
            to: target,
            message: `${file.path} → ${target}: ${arrow} must never exist: ${why} ${how(kind, line)}`,
          })
        } else if (browserSafe.has(fromPart)) {
          report({
            rule: 'browser',
            from: file.path,
            to: target,
            message: `${file.path} → ${target}: ${fromPart} imports from no other part: ${map.browserSafe?.why} ${how(kind, line)}`,
          })
        } else if (!allowed.has(`${fromPart}→${toPart}`)) {
          report({
            rule: 'arrow',
            from: file.path,
            to: target,
            message: `${file.path} → ${target}: ${arrow} is not an allowed arrow ${how(kind, line)}`,
          })
        }
        continue
      }
      for (const rule of map.packagesOnlyIn ?? []) {
        if (matchesPackage(specifier, rule.packages) && !(fromPart && rule.parts.includes(fromPart))) {
          report({
            rule: 'package',
            from: file.path,
            to: specifier,
            message: `${file.path} imports '${specifier}', allowed only in ${rule.parts.join(', ')}: ${rule.why} ${how(kind, line)}`,
          })
        }
      }
      if (fromPart && browserSafe.has(fromPart)) {
        const nodeOnly = map.browserSafe?.nodeOnlyPackages ?? []
        if (isNodeBuiltin(specifier) || matchesPackage(specifier, nodeOnly)) {
          report({
            rule: 'browser',
            from: file.path,
            to: specifier,
            message: `${file.path} imports node-only '${specifier}': ${map.browserSafe?.why} ${how(kind, line)}`,
          })
        }
      }
    }
  }

  // A pending entry excuses the one arrow it names; one that excuses nothing has been fixed and
  // must go, so the list only ever shrinks.
  const violations: Violation[] = []
  const excused: Violation[] = []
  const used = new Set<PendingArrow>()
  for (const v of found) {
    const entry = (map.pending ?? []).find((p) => p.from === v.from && p.to === v.to)
    if (entry && v.rule !== 'map' && v.rule !== 'unmapped') {
      used.add(entry)
      excused.push(v)
    } else violations.push(v)
  }
  for (const entry of map.pending ?? []) {
    if (!used.has(entry)) {
      violations.push({
        rule: 'pending',
        from: entry.from,
        to: entry.to,
        message: `pending ${entry.from} → ${entry.to} no longer occurs: remove it from architecture/parts.json`,
      })
    }
  }
  return { violations, excused }
}
