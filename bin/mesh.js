#!/usr/bin/env node
// The `mesh` command. The node needs Node >= 22.18 (libp2p 3, TypeScript type
// stripping); on an older system node it re-runs itself on the Node 24 that the
// project pins as a devDependency. The re-run is one process with this one: every
// signal that ends a process is passed on, the child's end is this one's, and the
// child ends when this process dies however it died (the IPC channel closes; the child
// watches it, src/cli/parent-watch.ts).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
// The default export, not a named import: an older Node (no enableCompileCache) must still load this file.
import nodeModule from 'node:module'
import { fileURLToPath } from 'node:url'

const main = new URL('../src/cli/main.ts', import.meta.url)
if (process.features.typescript) {
  // Issue 15 (cold start): V8's compile cache goes on here, in JavaScript, before the first
  // .ts file: main.ts's type stripping then comes from the cache too, and the stripper
  // (a WebAssembly module) is never loaded. main.ts turns it on again for `node main.ts`.
  nodeModule.enableCompileCache()
  // Issue 15 (cold start): module resolutions come from the last run's, beside the compile cache.
  const { cacheResolutions } = await import(new URL('../src/cli/resolve-cache.ts', import.meta.url).href)
  cacheResolutions(new URL('../', import.meta.url))
  await import(main.href)
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url))
  if (!existsSync(pinned)) {
    process.stderr.write('mesh needs Node >= 22.18; run npm install in the project first\n')
    process.exit(1)
  }
  const child = spawn(pinned, [fileURLToPath(main), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MESH_RESPAWNED: '1' },
  })
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']
  const forward = (signal) => child.kill(signal)
  for (const signal of signals) process.on(signal, forward)
  child.on('error', (err) => {
    process.stderr.write(`mesh: ${err.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1)
    // End the way the child ended: by the same signal, with its default action.
    for (const s of signals) process.off(s, forward)
    process.kill(process.pid, signal)
  })
}
