/**
 * The module map in architecture/parts.json, held against the real imports of src/.
 * The second half runs the same checker on a small made-up tree that breaks each rule, so a
 * checker that reports nothing cannot pass.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  type ArchitectureMap,
  type CheckResult,
  checkArchitecture,
  type SourceFile,
} from './architecture/check-imports.ts'
import { scanImports } from './architecture/scan-imports.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const map = JSON.parse(readFileSync(join(root, 'architecture', 'parts.json'), 'utf8')) as ArchitectureMap

function sourceFiles(): SourceFile[] {
  return readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.tsx?$/.test(f))
    .map((f) => ({
      path: `src/${f.split('\\').join('/')}`,
      text: readFileSync(join(root, 'src', f), 'utf8'),
    }))
}

const messages = (result: CheckResult): string[] => result.violations.map((v) => v.message)

describe('architecture: the real tree', () => {
  const files = sourceFiles()
  const result = checkArchitecture(files, map)

  test('reads the tree', () => {
    assert.ok(files.length > 100, `found only ${files.length} source files`)
    assert.ok(files.some((f) => f.path === 'src/mesh-node.ts'))
  })

  test('every src file belongs to one part, every arrow is allowed, no never-arrow, fastify only in src/http', () => {
    assert.deepEqual(messages(result), [])
  })

  test('every pending entry still excuses a real arrow (the list only shrinks)', () => {
    // Stale entries are reported as violations by the run above; here the count is pinned too,
    // so adding an entry is a visible change to this file's expectations, not a silent excuse.
    assert.equal(result.excused.length, (map.pending ?? []).length)
    for (const entry of map.pending ?? [])
      assert.ok(entry.why.length > 0, `${entry.from} → ${entry.to} needs a why`)
  })
})

/** The real map with its pending list dropped, so the made-up tree is judged by the target alone. */
const target: ArchitectureMap = { ...map, pending: [] }

const file = (path: string, text: string): SourceFile => ({ path, text })

describe('architecture: deliberate violations are reported', () => {
  test('a domain module importing fastify', () => {
    const result = checkArchitecture(
      [
        file('src/rooms/routes.ts', "import type { FastifyInstance } from 'fastify'\n"),
        file('src/rooms/ws.ts', "import fastifyWebsocket from '@fastify/websocket'\n"),
        file('src/http/rooms.ts', "import type { FastifyInstance } from 'fastify'\n"),
      ],
      target,
    )
    assert.deepEqual(
      result.violations.map((v) => [v.rule, v.from, v.to]),
      [
        ['package', 'src/rooms/routes.ts', 'fastify'],
        ['package', 'src/rooms/ws.ts', '@fastify/websocket'],
      ],
    )
    assert.match(
      messages(result)[0] as string,
      /^src\/rooms\/routes\.ts imports 'fastify', allowed only in Http: routes are fastify plugins .* \(type import, line 1\)$/,
    )
  })

  test('the root importing fastify itself rather than through src/http', () => {
    const result = checkArchitecture(
      [
        file(
          'src/mesh-node.ts',
          "import { createHttpApp } from './http/index.ts'\nimport fastify from 'fastify'\n",
        ),
        file('src/http/index.ts', "import fastify from 'fastify'\nexport const createHttpApp = fastify\n"),
      ],
      target,
    )
    assert.deepEqual(
      result.violations.map((v) => [v.rule, v.from, v.to]),
      [['package', 'src/mesh-node.ts', 'fastify']],
    )
  })

  test('Rooms importing Connections: a never-arrow, reported with its why', () => {
    const result = checkArchitecture(
      [
        file('src/rooms/room-sync.ts', "import type { ActGate } from '../connections/act-gate.ts'\n"),
        file('src/connections/act-gate.ts', 'export interface ActGate {}\n'),
      ],
      target,
    )
    assert.deepEqual(messages(result), [
      'src/rooms/room-sync.ts → src/connections/act-gate.ts: Rooms → Connections must never exist: ' +
        'acts and refusals live in Auth and Audit (type import, line 1)',
    ])
  })

  test('an arrow the map does not allow', () => {
    const result = checkArchitecture(
      [
        file('src/store/mesh-store.ts', "const m = await import('../audit/index.ts')\n"),
        file('src/audit/index.ts', 'export {}\n'),
      ],
      target,
    )
    assert.deepEqual(messages(result), [
      'src/store/mesh-store.ts → src/audit/index.ts: Store → Audit is not an allowed arrow (dynamic import, line 1)',
    ])
  })

  test('a file that belongs to no part', () => {
    const result = checkArchitecture(
      [file('src/stray.ts', "import { x } from './errors.ts'\n"), file('src/errors.ts', '')],
      target,
    )
    assert.deepEqual(messages(result), [
      'src/stray.ts belongs to no part: add its folder to a part in architecture/parts.json',
    ])
  })

  test('a file two parts claim', () => {
    const overlapping: ArchitectureMap = {
      ...target,
      parts: { ...target.parts, Extra: { is: ['src/rooms/room.ts'], says: 'a second home' } },
    }
    const result = checkArchitecture([file('src/rooms/room.ts', '')], overlapping)
    assert.deepEqual(messages(result), [
      'src/rooms/room.ts belongs to 2 parts (Rooms, Extra): a file has one home',
    ])
  })

  test('the API contract importing node-only modules or another part', () => {
    const result = checkArchitecture(
      [
        file(
          'src/api/client.ts',
          [
            "import { readFile } from 'node:fs/promises'",
            "import { createHash } from 'crypto'",
            "import type { Logger } from 'pino'",
            "import type { PeerId } from '@libp2p/interface'",
            "import type { FromSchema } from 'json-schema-to-ts'",
            "import { MeshError } from '../errors.ts'",
            "import type { MeshStore } from '../store/index.ts'",
            "import { DID } from './schemas.ts'",
          ].join('\n'),
        ),
        file('src/api/schemas.ts', 'export const DID = {}\n'),
        file('src/errors.ts', ''),
        file('src/store/index.ts', ''),
      ],
      target,
    )
    assert.deepEqual(
      result.violations.map((v) => [v.rule, v.to]),
      [
        ['browser', 'node:fs/promises'],
        ['browser', 'crypto'],
        ['browser', 'pino'],
        ['browser', '@libp2p/interface'],
        ['browser', 'src/errors.ts'],
        ['never', 'src/store/index.ts'],
      ],
    )
    assert.match(messages(result)[4] as string, /Api imports from no other part: the console's vite build/)
  })

  test('a relative import that resolves to no file', () => {
    const result = checkArchitecture(
      [file('src/rooms/room.ts', "import { gone } from './gone.ts'\n")],
      target,
    )
    assert.deepEqual(messages(result), [
      "src/rooms/room.ts imports './gone.ts', which is no file under src (static import, line 1)",
    ])
  })

  test('a pending entry excuses its arrow only while it exists, then must be removed', () => {
    const withPending: ArchitectureMap = {
      ...target,
      pending: [
        { from: 'src/rooms/room-sync.ts', to: 'src/connections/act-gate.ts', why: 'moving' },
        { from: 'src/rooms/routes.ts', to: 'fastify', why: 'moving' },
      ],
    }
    const files = [
      file('src/rooms/room-sync.ts', "import type { ActGate } from '../connections/act-gate.ts'\n"),
      file('src/connections/act-gate.ts', ''),
      file('src/rooms/other.ts', "import type { ActGate } from '../connections/act-gate.ts'\n"),
    ]
    const result = checkArchitecture(files, withPending)
    assert.deepEqual(
      result.excused.map((v) => v.from),
      ['src/rooms/room-sync.ts'],
    )
    assert.deepEqual(messages(result), [
      'src/rooms/other.ts → src/connections/act-gate.ts: Rooms → Connections must never exist: ' +
        'acts and refusals live in Auth and Audit (type import, line 1)',
      'pending src/rooms/routes.ts → fastify no longer occurs: remove it from architecture/parts.json',
    ])
  })

  test('a map that names an unknown part or allows a never-arrow', () => {
    const broken: ArchitectureMap = {
      ...target,
      arrows: [...target.arrows, ['Rooms', 'Connections'], ['Rooms', 'Nowhere']],
    }
    assert.deepEqual(messages(checkArchitecture([], broken)), [
      'arrow names unknown part "Nowhere"',
      'Rooms → Connections is both allowed and never',
    ])
  })
})

describe('architecture: reading imports', () => {
  const specifiers = (source: string): string[] => scanImports(source).map((i) => `${i.kind} ${i.specifier}`)

  test('every import form, type-only ones included', () => {
    const source = [
      "import a from './a.ts'",
      "import type { B } from './b.ts'",
      "import { type C, d } from './c.ts'",
      "export { e } from './e.ts'",
      "export * as f from './f.ts'",
      "export type { G } from './g.ts'",
      "import './side-effect.ts'",
      'import {',
      '  h,',
      '  i,',
      "} from './multi-line.ts'",
      "const j = await import('./dynamic.ts')",
      "type K = typeof import('./type-query.ts')",
    ].join('\n')
    assert.deepEqual(specifiers(source), [
      'static ./a.ts',
      'type ./b.ts',
      'static ./c.ts',
      're-export ./e.ts',
      're-export ./f.ts',
      'type ./g.ts',
      'side-effect ./side-effect.ts',
      'static ./multi-line.ts',
      'dynamic ./dynamic.ts',
      'dynamic ./type-query.ts',
    ])
    assert.equal(scanImports(source)[7]?.line, 8)
  })

  test('nothing inside comments, strings, templates or regexes', () => {
    const source = [
      "// import x from './line-comment.ts'",
      "/* import y from './block-comment.ts' */",
      'const s = "import z from \'./in-string.ts\'"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text holding a template
      "const t = `import('./in-template.ts') ${await import('./in-substitution.ts')} tail`",
      "const r = /import w from '.\\/in-regex.ts'/",
      'const q = a / b',
      "const from = 'x'",
      "export const value = { from: './not-an-import.ts' }",
      "const o = obj.import('./method.ts')",
      "import real from './real.ts'",
    ].join('\n')
    assert.deepEqual(specifiers(source), ['dynamic ./in-substitution.ts', 'static ./real.ts'])
  })

  test('a stray quote in JSX text does not hide the imports after it', () => {
    const source = [
      "import { A } from './a.tsx'",
      "const el = <p>Don't press</p>",
      "const B = lazy(() => import('./b.tsx'))",
    ].join('\n')
    assert.deepEqual(specifiers(source), ['static ./a.tsx', 'dynamic ./b.tsx'])
  })
})
