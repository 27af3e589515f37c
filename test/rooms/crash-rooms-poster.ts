// Child process for the group-commit SIGKILL test: posts into several rooms at once, forever
// (every room's log rows share the store's writes), printing `<room> <message id>` for each
// acknowledged post on stdout.
import { RoomManager } from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, meshA, PRINCIPALS } from './helpers.ts'

const store = new MeshStore({ path: process.argv[2] as string })
await store.open()
const rooms = new RoomManager({
  store,
  key: () => meshA,
  meshName: 'alpha',
  compactEvery: 50,
  localPrincipal: async (did) => PRINCIPALS[meshA.did]?.[did],
})
await rooms.start()
const ids: string[] = []
for (let r = 0; r < Number(process.argv[3] ?? 4); r++)
  ids.push((await rooms.create({ name: `burst ${r}`, creator: alice.did })).id)
process.stdout.write(`rooms ${ids.join(' ')}\n`)
let i = 0
await Promise.all(
  ids.map(async (id) => {
    for (;;) {
      const posted = await Promise.all(
        Array.from({ length: 3 }, () => rooms.post(id, alice.did, `burst ${i++} ${'x'.repeat(200)}`)),
      )
      for (const p of posted) process.stdout.write(`${id} ${p.id}\n`)
    }
  }),
)
