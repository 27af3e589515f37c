import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import fastifyWebsocket from '@fastify/websocket'
import { Registry } from 'prom-client'
import { WebSocket } from 'ws'
import { createHttpApp, type HttpConnectionLimits } from '../../src/http/index.ts'
import { silentLogger } from '../../src/log.ts'

async function server(t: TestContext, connections: HttpConnectionLimits) {
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry(), connections })
  await app.register(fastifyWebsocket)
  app.get('/api/ping', async () => ({ ok: true }))
  app.post('/api/echo', async (request) => request.body)
  app.get('/ws', { websocket: true }, (socket) => {
    socket.on('message', (data) => socket.send(data))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  // First (after hooks run in order): the attackers' half-read requests would hold close() open.
  t.after(async () => {
    app.server.closeAllConnections()
    await app.close()
  })
  const { port } = app.server.address() as { port: number }
  return { app, port }
}

/** The slowloris client: a request line, then one header byte every `everyMs`, never the blank line. */
function dribbler(t: TestContext, port: number, everyMs: number, localAddress = '127.0.0.1'): Socket {
  const socket = connect({ port, host: '127.0.0.1', localAddress })
  socket.on('error', () => {})
  // Reading, so that the server's hang-up is seen ('end' comes only to a flowing socket).
  socket.resume()
  socket.write('GET /api/ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: ')
  const timer = setInterval(() => {
    if (socket.writable) socket.write('a')
  }, everyMs)
  socket.once('close', () => clearInterval(timer))
  t.after(() => {
    clearInterval(timer)
    socket.destroy()
  })
  return socket
}

/** A raw GET on a fresh connection: the status line, or 'closed' if the server hung up without one. */
async function rawGet(port: number, localAddress = '127.0.0.1'): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1', localAddress })
  let answer = ''
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString()
  })
  socket.on('error', () => {})
  socket.write('GET /api/ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  await closed(socket)
  return answer.split('\r\n')[0] || 'closed'
}

describe('HTTP connection handling (slowloris)', () => {
  it('closes a connection that dribbles its headers past the header timeout', {
    timeout: 10_000,
  }, async (t) => {
    const { port } = await server(t, { headersTimeoutMs: 300, requestTimeoutMs: 600 })
    const attacker = dribbler(t, port, 50)
    const opened = Date.now()
    await closed(attacker)
    // Closed by the header clock, not by anything that would take the default 60 s or never.
    assert.ok(Date.now() - opened < 5_000, `closed after ${Date.now() - opened} ms`)
    assert.equal(await rawGet(port), 'HTTP/1.1 200 OK')
  })

  it('closes a connection that dribbles its body past the request timeout', {
    timeout: 10_000,
  }, async (t) => {
    const { port } = await server(t, { headersTimeoutMs: 300, requestTimeoutMs: 600 })
    const socket = connect({ port, host: '127.0.0.1' })
    socket.on('error', () => {})
    socket.resume()
    socket.write(
      'POST /api/ping HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n',
    )
    const timer = setInterval(() => {
      if (socket.writable) socket.write(' ')
    }, 50)
    t.after(() => {
      clearInterval(timer)
      socket.destroy()
    })
    const opened = Date.now()
    await closed(socket)
    assert.ok(Date.now() - opened < 5_000, `closed after ${Date.now() - opened} ms`)
  })

  it('at the connection cap refuses newcomers until the attackers time out, then serves them', {
    timeout: 10_000,
  }, async (t) => {
    const { port, app } = await server(t, { headersTimeoutMs: 400, requestTimeoutMs: 800, maxConnections: 4 })
    const attackers = Array.from({ length: 4 }, () => dribbler(t, port, 50))
    await Promise.all(attackers.map((s) => once(s, 'connect')))
    // Held: the cap is reached (the server counts a connection once it has accepted it).
    await waitFor(async () => (await rawGet(port)) === 'closed')
    await Promise.all(attackers.map(closed))
    assert.equal(await rawGet(port), 'HTTP/1.1 200 OK')
    const metrics = await app.inject({ method: 'GET', url: '/api/ping' })
    assert.equal(metrics.statusCode, 200)
  })

  it('caps connections per remote address, so one address cannot take every slot', {
    timeout: 10_000,
  }, async (t) => {
    const { port } = await server(t, { headersTimeoutMs: 10_000, maxConnectionsPerIp: 2 })
    // All of 127/8 is loopback on Linux: 127.0.0.2 and .3 stand for two remote hosts.
    const attackers = [dribbler(t, port, 50, '127.0.0.2'), dribbler(t, port, 50, '127.0.0.2')]
    await Promise.all(attackers.map((s) => once(s, 'connect')))
    await waitFor(async () => (await rawGet(port, '127.0.0.2')) === 'closed')
    // Another address is served while the attacker holds its two; so is the host itself (exempt).
    assert.equal(await rawGet(port, '127.0.0.3'), 'HTTP/1.1 200 OK')
    const local = [dribbler(t, port, 50), dribbler(t, port, 50)]
    await Promise.all(local.map((s) => once(s, 'connect')))
    assert.equal(await rawGet(port, '127.0.0.1'), 'HTTP/1.1 200 OK')
  })

  it('leaves an upgraded WebSocket open past every HTTP timeout', { timeout: 10_000 }, async (t) => {
    const { port } = await server(t, {
      headersTimeoutMs: 200,
      requestTimeoutMs: 300,
      keepAliveTimeoutMs: 200,
      idleTimeoutMs: 300,
    })
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    t.after(() => ws.terminate())
    await once(ws, 'open')
    let wsClosed = false
    ws.once('close', () => {
      wsClosed = true
    })
    // An attacker opened after the WebSocket, closed by the timeouts: they have run their course.
    const attacker = dribbler(t, port, 50)
    await closed(attacker)
    const idle = connect({ port, host: '127.0.0.1' })
    idle.on('error', () => {})
    idle.resume()
    await closed(idle)
    assert.equal(wsClosed, false)
    ws.send('still here')
    const [echo] = (await once(ws, 'message')) as [Buffer]
    assert.equal(echo.toString(), 'still here')
  })
})

// Not events.once: it rejects on the 'error' (EPIPE, reset) a refused socket may emit first.
const closed = (socket: Socket) => new Promise((resolve) => socket.once('close', resolve))

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20))
}
