// Child process for the SIGKILL test: writes batches forever, acknowledging each on stdout.
import { MeshStore } from '../../src/store/index.ts'

const store = new MeshStore({ path: process.argv[2] as string })
await store.open()
const registry = store.sublevel('registry')
const discovery = store.sublevel('discovery')
for (let i = 0; ; i++) {
  const key = String(i).padStart(8, '0')
  const record = { i, body: 'x'.repeat(2048) }
  await store.batch([
    { type: 'put', sublevel: registry, key, value: record },
    { type: 'put', sublevel: discovery, key, value: { i, twin: true } },
  ])
  process.stdout.write(`${i}\n`)
}
