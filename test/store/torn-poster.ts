// Child process for the torn-log test: posts `count` messages one by one, printing each
// acknowledged id, then writes a durability mark, says "marked", and waits to be killed.
import { RoomManager } from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, meshA, PRINCIPALS } from '../rooms/helpers.ts'

const store = new MeshStore({ path: process.argv[2] as string })
await store.open()
const rooms = new RoomManager({
  store,
  key: () => meshA,
  meshName: 'alpha',
  localPrincipal: async (did) => PRINCIPALS[meshA.did]?.[did],
})
await rooms.start()
const { id } = await rooms.create({ name: 'torn', creator: alice.did })
process.stdout.write(`room ${id}\n`)
for (let i = 0; i < Number(process.argv[3]); i++) {
  const posted = await rooms.post(id, alice.did, `post ${i} ${'x'.repeat(200)}`)
  process.stdout.write(`${posted.id}\n`)
}
await store.mark()
process.stdout.write('marked\n')
setInterval(() => {}, 60_000)
