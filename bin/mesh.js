#!/usr/bin/env node
// The `mesh` command. The node needs Node >= 22.18 (libp2p 3, TypeScript type
// stripping); on an older system node it re-runs itself on the Node 24 that the
// project pins as a devDependency.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const main = new URL('../src/cli/main.ts', import.meta.url)
if (process.features.typescript) {
  await import(main.href)
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url))
  if (!existsSync(pinned)) {
    process.stderr.write('mesh needs Node >= 22.18; run npm install in the project first\n')
    process.exit(1)
  }
  const child = spawn(pinned, [fileURLToPath(main), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)))
}
