import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type * as API from '@ucanto/interface'
import { issueDelegation } from '../../src/auth/authority/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'

const FAKE = join(import.meta.dirname, '..', 'fixtures', 'fake-openai.ts')

export interface FakeStats {
  requests: number
  aborted: number
  keys: string[]
}

/** The fake OpenAI upstream in its own process (test/fixtures/fake-openai.ts); killed when the test ends. */
export async function spawnFakeOpenAI(
  t: TestContext,
  options: { key?: string } = {},
): Promise<{ url: string; stats: () => Promise<FakeStats> }> {
  const child = spawn(process.execPath, [FAKE, '0'], {
    env: { ...process.env, ...(options.key !== undefined ? { FAKE_OPENAI_KEY: options.key } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /ready (\S+)/.exec(out)
      if (match !== null) resolve(match[1] as string)
    })
    child.once('exit', (code) => reject(new Error(`the fake upstream exited (${code}): ${out}`)))
  })
  const origin = new URL(url).origin
  return { url, stats: async () => (await (await fetch(`${origin}/_stats`)).json()) as FakeStats }
}

export type Auth = { token: string } | { ucan: string } | Record<string, never>

export function headersOf(auth: Auth): Record<string, string> {
  if ('token' in auth) return { authorization: `Bearer ${auth.token}` }
  if ('ucan' in auth) return { 'x-mesh-ucan': auth.ucan }
  return {}
}

export interface Answer {
  status: number
  headers: Headers
  json: Record<string, unknown> & {
    error?: { code: string; message: string; details: Record<string, unknown> }
  }
}

/** `POST /v1/chat/completions` with `auth`, not streamed. */
export async function chat(base: string, auth: Auth, body: unknown, signal?: AbortSignal): Promise<Answer> {
  const response = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headersOf(auth) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal !== undefined ? { signal } : {}),
  })
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as Answer['json'],
  }
}

/** A chat request of `text`. */
export const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: 'fake-small',
  messages: [{ role: 'user', content: text }],
  ...extra,
})

/** The usage an upstream answer reports. */
export function usageIn(json: Record<string, unknown>): number {
  return (json.usage as { total_tokens: number }).total_tokens
}

/** A delegation of `model/invoke` on `meshDid` from `issuer` to `audience` (nb: e.g. `{model}`). */
export function modelGrant(
  issuer: Ed25519KeyPair,
  meshDid: string,
  audience: string,
  proofs: API.Delegation[],
  nb?: Record<string, unknown>,
): Promise<API.Delegation> {
  return issueDelegation({
    issuer,
    audience,
    capabilities: [
      { can: 'model/invoke', with: meshDid as `did:${string}:${string}`, ...(nb ? { nb } : {}) },
    ],
    expiration: Math.floor(Date.now() / 1000) + 3600,
    proofs,
  })
}

/** `agent`'s invocation of `model/invoke` on `meshDid` (fresh: single use). */
export function modelInvocation(
  agent: Ed25519KeyPair,
  meshDid: string,
  proofs: API.Delegation[],
  nb: Record<string, unknown> = {},
): Promise<string> {
  return invocationToken(agent, meshDid, { can: 'model/invoke', with: meshDid, nb }, proofs)
}

/** Every server-sent event of a streamed answer, with when each arrived (ms since the request). */
export async function streamed(
  base: string,
  auth: Auth,
  body: unknown,
): Promise<{
  status: number
  contentType: string | null
  events: Array<{ data: string; at: number }>
  reads: number
}> {
  const started = performance.now()
  const response = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headersOf(auth) },
    body: JSON.stringify(body),
  })
  const events: Array<{ data: string; at: number }> = []
  let buffer = ''
  let reads = 0
  const decoder = new TextDecoder()
  for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
    reads++
    buffer += decoder.decode(bytes, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end !== -1) {
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      for (const line of event.split('\n')) {
        if (line.startsWith('data: ')) events.push({ data: line.slice(6), at: performance.now() - started })
      }
      end = buffer.indexOf('\n\n')
    }
  }
  return { status: response.status, contentType: response.headers.get('content-type'), events, reads }
}
