/**
 * A stock relay for `rooms.relay_msgs_per_s` (bench/rooms-relay.ts), in its own process:
 * `node rooms-relay-server.ts y-websocket|hocuspocus` listens on 127.0.0.1:0 and prints
 * `ready <port>`; SIGTERM ends it.
 *
 * - y-websocket: `@y/websocket-server` 0.1.1 as its README runs it (`setupWSConnection`
 *   on every connection of a `ws` server; the room is the URL path), no persistence.
 * - hocuspocus: `@hocuspocus/server` 4 `Server` with no extensions (no persistence, no
 *   authentication hook).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from '@hocuspocus/server'
import { setupWSConnection } from '@y/websocket-server/utils'
import { WebSocketServer } from 'ws'

const kind = process.argv[2]
let port: number
let close: () => Promise<void>
if (kind === 'y-websocket') {
  const http = createServer((_req, res) => res.writeHead(200).end('ok'))
  const wss = new WebSocketServer({ server: http })
  wss.on('connection', (conn, req) => setupWSConnection(conn, req))
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  port = (http.address() as AddressInfo).port
  close = async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => http.close(resolve))
  }
} else if (kind === 'hocuspocus') {
  const server = new Server({ port: 0, address: '127.0.0.1', quiet: true, stopOnSignals: false })
  await server.listen()
  port = server.address.port
  close = () => server.destroy()
} else {
  throw new Error(`unknown relay ${kind}`)
}
process.on('SIGTERM', () => {
  void close().finally(() => process.exit(0))
})
process.stdout.write(`ready ${port}\n`)
