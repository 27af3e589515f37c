// Child process for the SIGKILL test: posts in concurrent bursts forever, printing each
// acknowledged message id on stdout.
import { RoomManager } from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, meshA, PRINCIPALS } from './helpers.ts'

const store = new MeshStore({ path: process.argv[2] as string })
await store.open()
const rooms = new RoomManager({
  store,
  key: () => meshA,
  meshName: 'alpha',
  compactEvery: 100,
  localPrincipal: async (did) => PRINCIPALS[meshA.did]?.[did],
})
await rooms.start()
const { id } = await rooms.create({ name: 'burst', creator: alice.did })
process.stdout.write(`room ${id}\n`)
for (let i = 0; ; i += 8) {
  await Promise.all(
    Array.from({ length: 8 }, async (_, j) => {
      const posted = await rooms.post(id, alice.did, `burst ${i + j} ${'x'.repeat(200)}`)
      process.stdout.write(`${posted.id}\n`)
    }),
  )
}
