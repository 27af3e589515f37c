/**
 * Issue 15 (cold start): the rooms' modules load no Yjs, lib0 or y-protocols until a room
 * uses them; then they get the very modules an `import` gets (one Yjs), and after the
 * first use the exported names are the modules themselves, not stand-ins.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOMS = new URL('../../src/rooms/index.ts', import.meta.url).href
const ROUTES = new URL('../../src/http/routes/rooms.ts', import.meta.url).href
const LAZY = new URL('../../src/rooms/lazy-yjs.ts', import.meta.url).href

/** Runs `then` in a fresh process after importing the rooms (and their routes); notes which packages loaded when. */
async function inFreshProcess(then: string): Promise<Record<string, unknown>> {
  const script = `
    import { registerHooks } from 'node:module'
    const seen = new Set()
    registerHooks({ resolve(spec, ctx, next) {
      const r = next(spec, ctx)
      const m = r.url.match(/node_modules\\/(yjs|lib0|y-protocols)\\//)
      if (m) seen.add(m[1])
      return r
    } })
    await import(${JSON.stringify(ROOMS)})
    await import(${JSON.stringify(ROUTES)})
    const lazy = await import(${JSON.stringify(LAZY)})
    const atImport = [...seen]
    const out = { atImport }
    ${then}
    out.after = [...seen].sort()
    console.log(JSON.stringify(out))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script])
  return JSON.parse(stdout)
}

describe('Yjs loads with the first room (issue 15)', () => {
  it('importing the rooms and their routes loads no yjs, lib0 or y-protocols', async () => {
    const out = await inFreshProcess('')
    assert.deepEqual(out.atImport, [])
    assert.deepEqual(out.after, [])
  })

  it('the first use loads the modules an import gets; the names are then the modules themselves', async () => {
    const out = await inFreshProcess(`
      const doc = new lazy.Y.Doc()
      doc.getText('t').insert(0, 'hello')
      const Y = await import('yjs')
      const { Awareness } = await import('y-protocols/awareness')
      const encoding = await import('lib0/encoding')
      out.sameYjs = lazy.Y === Y && doc instanceof Y.Doc
      const copy = new Y.Doc()
      Y.applyUpdate(copy, lazy.Y.encodeStateAsUpdate(doc))
      out.text = copy.getText('t').toString()
      const awareness = new lazy.awarenessProtocol.Awareness(doc)
      out.awareness = awareness instanceof Awareness
      awareness.destroy() // its interval would keep the process alive
      out.sameAwareness = lazy.awarenessProtocol.Awareness === Awareness
      const encoder = lazy.encoding.createEncoder()
      lazy.encoding.writeVarUint(encoder, 300)
      out.varUint = lazy.decoding.readVarUint(lazy.decoding.createDecoder(lazy.encoding.toUint8Array(encoder)))
      out.sameEncoding = lazy.encoding === encoding
      out.sync = typeof lazy.syncProtocol.writeSyncStep1
    `)
    assert.equal(out.sameYjs, true, 'one Yjs: the lazy name is the module an import gets')
    assert.equal(out.text, 'hello')
    assert.equal(out.awareness, true)
    assert.equal(out.sameAwareness, true)
    assert.equal(out.varUint, 300)
    assert.equal(out.sameEncoding, true)
    assert.equal(out.sync, 'function')
    assert.deepEqual(out.after, ['lib0', 'y-protocols', 'yjs'])
  })
})
