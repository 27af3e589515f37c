/**
 * The model proxy's overhead per request (issue 18, SPEC §13): the same chat completion
 * sent straight to the upstream and through the proxy (a member's session, quotas
 * counted, usage kept, an audit row written), in alternation, one at a time, over
 * kept-alive connections. The upstream is the tests' fake OpenAI server in its own
 * process (test/fixtures/fake-openai.ts); the node runs in this process.
 *
 * - model.proxy_overhead_p50_ms: the median of (through the proxy − straight) over pairs
 *   of requests sent back to back, against the issue's aim of 2 ms (ratio ≤ 1 is met).
 * - model.proxy_stream_overhead_p50_ms: the same for a streamed completion (to `[DONE]`).
 *
 * A whole pair and a streamed pair take turns, so that both see the same load.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signIn } from '../../src/cli/http-client.ts'
import type { MeshNode } from '../../src/mesh-node.ts'
import { startInProcessMesh } from './in-process-mesh.ts'
import { emit, median, note, type ResultName, round } from './report.ts'

export const MODEL_NAMES: ResultName[] = [
  { name: 'model.proxy_overhead_p50_ms', unit: 'ms', better: 'lower' },
  { name: 'model.proxy_stream_overhead_p50_ms', unit: 'ms', better: 'lower' },
]

/** The aim: at most 2 ms of overhead per request at the median. */
const AIM_MS = 2
const FAKE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'fake-openai.ts')
const UNLIMITED = { requestsPerMinute: 1e12, requestsPerDay: 1e12, tokensPerMinute: 1e15, tokensPerDay: 1e15 }

async function startFake(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [FAKE, '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /ready (\S+)/.exec(out)
      if (match !== null) resolve(match[1] as string)
    })
    child.once('exit', (code) => reject(new Error(`the fake upstream exited (${code})`)))
  })
  return { child, url }
}

const BODY = {
  model: 'fake-small',
  messages: [
    { role: 'system', content: 'You are a helpful assistant of the mesh.' },
    { role: 'user', content: 'Summarise the last three messages of the room in one line please.' },
  ],
}

async function timed(url: string, headers: Record<string, string>, stream: boolean): Promise<number> {
  const t0 = performance.now()
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(stream ? { ...BODY, stream: true } : BODY),
  })
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${await response.text()}`)
  await response.arrayBuffer()
  return performance.now() - t0
}

export async function benchModel(init: { warmup?: number; pairs?: number } = {}): Promise<void> {
  const warmup = init.warmup ?? 100
  const pairs = init.pairs ?? 600
  const root = await mkdtemp(join(tmpdir(), 'mesh-bench-model-'))
  const fake = await startFake()
  let node: MeshNode | undefined
  try {
    const started = await startInProcessMesh(root, {
      model: { upstream: fake.url, quotas: { tiers: { 1: UNLIMITED } } },
    })
    node = started.node
    const architect = started.architect
    const api = await signIn(node.httpUrl, architect)
    const auth = { authorization: `Bearer ${api.token as string}` }
    const direct = `${fake.url}/chat/completions`
    const proxied = `${node.httpUrl}/v1/chat/completions`
    // One pair of each kind in turn: both kinds see the same load on the machine.
    const pair = async (
      stream: boolean,
      directFirst: boolean,
    ): Promise<{ straight: number; overhead: number }> => {
      const a = directFirst ? await timed(direct, {}, stream) : await timed(proxied, auth, stream)
      const b = directFirst ? await timed(proxied, auth, stream) : await timed(direct, {}, stream)
      const [d, p] = directFirst ? [a, b] : [b, a]
      return { straight: d, overhead: p - d }
    }
    for (let i = 0; i < warmup; i++) {
      await pair(false, true)
      await pair(true, true)
    }
    const kinds = [
      {
        stream: false,
        name: 'model.proxy_overhead_p50_ms',
        straight: [] as number[],
        overheads: [] as number[],
      },
      {
        stream: true,
        name: 'model.proxy_stream_overhead_p50_ms',
        straight: [] as number[],
        overheads: [] as number[],
      },
    ]
    for (let i = 0; i < pairs; i++) {
      for (const kind of kinds) {
        // alternate which goes first, so neither gets the warmer turn
        const { straight, overhead } = await pair(kind.stream, i % 2 === 0)
        kind.straight.push(straight)
        kind.overheads.push(overhead)
      }
    }
    for (const kind of kinds) {
      const overhead = median(kind.overheads)
      note(
        `model ${kind.stream ? 'streamed' : 'whole'}: straight p50 ${round(median(kind.straight))} ms, overhead p50 ${round(overhead)} ms over ${pairs} pairs`,
      )
      emit(kind.name, overhead, 'ms', AIM_MS, 1, 'lower')
    }
  } finally {
    await node?.stop()
    fake.child.kill('SIGKILL')
    await once(fake.child, 'exit').catch(() => {})
    await rm(root, { recursive: true, force: true })
  }
}
