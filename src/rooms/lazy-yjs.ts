/**
 * Issue 15 (cold start): Yjs, lib0's encoders and y-protocols load the first time a room
 * uses them, not with the node — a start that loads no room never loads them (≈ 30
 * modules, ≈ 25 ms of CPU). Each name below stands for its module's namespace, as
 * `import * as` gave it: a stand-in until the first property read, which requires the
 * module — synchronously (the callers are), and its ES build, the one `import 'yjs'`
 * (e.g. from y-protocols) gets, so there is one Yjs, never a second from its CommonJS
 * build — and then the module itself. Types come from `import type`.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type * as Decoding from 'lib0/decoding'
import type * as Encoding from 'lib0/encoding'
import type * as AwarenessProtocol from 'y-protocols/awareness'
import type * as SyncProtocol from 'y-protocols/sync'
import type * as Yjs from 'yjs'

const require = createRequire(import.meta.url)

/**
 * The ES module `specifier` resolves to from here (its `import` condition), loaded on the
 * first property read of the stand-in returned; `loaded` then puts the module itself in
 * the exported binding, so every later `Y.x` reads the module directly (ES bindings are
 * live), not through the stand-in.
 */
function lazyModule<T extends object>(specifier: string, loaded: (module: T) => void): T {
  let module: T | undefined
  const load = (): T => {
    if (module === undefined) {
      module = require(fileURLToPath(import.meta.resolve(specifier))) as T
      loaded(module)
    }
    return module
  }
  return new Proxy({} as T, {
    get: (_target, key) => Reflect.get(load(), key),
    has: (_target, key) => Reflect.has(load(), key),
    ownKeys: () => Reflect.ownKeys(load()),
    getOwnPropertyDescriptor: (_target, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(load(), key)
      return descriptor === undefined ? undefined : { ...descriptor, configurable: true }
    },
  })
}

export let Y = lazyModule<typeof Yjs>('yjs', (m) => {
  Y = m
})
export let encoding = lazyModule<typeof Encoding>('lib0/encoding', (m) => {
  encoding = m
})
export let decoding = lazyModule<typeof Decoding>('lib0/decoding', (m) => {
  decoding = m
})
export let awarenessProtocol = lazyModule<typeof AwarenessProtocol>('y-protocols/awareness', (m) => {
  awarenessProtocol = m
})
export let syncProtocol = lazyModule<typeof SyncProtocol>('y-protocols/sync', (m) => {
  syncProtocol = m
})
