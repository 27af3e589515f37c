/**
 * The rooms benchmarks (issue 15, SPEC §14), as `npm run bench` runs them; each title
 * starts with "rooms" (`npm run bench -- rooms` runs them all). Sizes scale with
 * BENCH_ROOMS_SCALE (default 1: each runs in well under a minute on 2 cores).
 */
import type { NodePool } from './nodes.ts'
import type { ResultName } from './report.ts'
import { benchRoomsCatchup, ROOMS_CATCHUP_NAMES } from './rooms-catchup.ts'
import { benchRoomsDurable, ROOMS_DURABLE_NAMES } from './rooms-durable.ts'
import { benchRoomsMany, ROOMS_MANY_NAMES } from './rooms-many.ts'
import { benchRoomsRelay, roomsRelayNames } from './rooms-relay.ts'
import { benchRoomsScale, roomsScaleNames } from './rooms-scale.ts'

export interface RoomsBench {
  title: string
  names: ResultName[]
  run(pool: NodePool): Promise<void>
}

export const ROOMS_BENCHES: RoomsBench[] = [
  { title: 'rooms catch-up', names: ROOMS_CATCHUP_NAMES, run: (pool) => benchRoomsCatchup({ pool }) },
  { title: 'rooms growth', names: roomsScaleNames(), run: (pool) => benchRoomsScale({ pool }) },
  { title: 'rooms many rooms', names: ROOMS_MANY_NAMES, run: (pool) => benchRoomsMany({ pool }) },
  { title: 'rooms durable messages', names: ROOMS_DURABLE_NAMES, run: (pool) => benchRoomsDurable({ pool }) },
  {
    title: 'rooms relay between two meshes',
    names: roomsRelayNames(),
    run: (pool) => benchRoomsRelay({ pool }),
  },
]
