// Child process for the SIGKILL tests: posts in concurrent bursts forever, printing each
// acknowledged message id on stdout. With a room count (argv[3]), posts into that many
// rooms at once (their log rows share the store's group-committed writes), printing
// `rooms <id> <id>…` first and then `<room> <message id>` for each acknowledged post.
import { RoomManager } from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, meshA, PRINCIPALS } from './helpers.ts'

const count = process.argv[3] === undefined ? undefined : Number(process.argv[3])
const store = new MeshStore({ path: process.argv[2] as string })
await store.open()
const rooms = new RoomManager({
  store,
  key: () => meshA,
  meshName: 'alpha',
  compactEvery: count === undefined ? 100 : 50,
  localPrincipal: async (did) => PRINCIPALS[meshA.did]?.[did],
})
await rooms.start()
const ids: string[] = []
for (let r = 0; r < (count ?? 1); r++)
  ids.push((await rooms.create({ name: `burst ${r}`, creator: alice.did })).id)
process.stdout.write(count === undefined ? `room ${ids[0]}\n` : `rooms ${ids.join(' ')}\n`)
const burst = count === undefined ? 8 : 3
let i = 0
await Promise.all(
  ids.map(async (id) => {
    for (;;) {
      const posted = await Promise.all(
        Array.from({ length: burst }, () => rooms.post(id, alice.did, `burst ${i++} ${'x'.repeat(200)}`)),
      )
      for (const p of posted) process.stdout.write(count === undefined ? `${p.id}\n` : `${id} ${p.id}\n`)
    }
  }),
)
