import type { HttpClient } from '../../src/cli/http-client.ts'

export interface Uploaded {
  cid: string
  name: string
  size: number
  mime: string
}

/** `POST /api/rooms/:room/files` with the bytes as the body; throws the error body's code. */
export async function upload(
  api: HttpClient,
  room: string,
  bytes: Uint8Array,
  name: string,
  mime?: string,
): Promise<Uploaded> {
  const query = new URLSearchParams({ name, ...(mime !== undefined ? { mime } : {}) })
  const res = await fetch(`${api.baseUrl}/api/rooms/${room}/files?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  })
  const body = (await res.json()) as Uploaded & { error?: { code: string } }
  if (!res.ok)
    throw Object.assign(new Error(body.error?.code), { code: body.error?.code, status: res.status, body })
  return body
}

/** `GET /api/files/:cid` as a raw Response. */
export function download(api: HttpClient, cid: string, range?: string): Promise<Response> {
  return fetch(`${api.baseUrl}/api/files/${cid}`, {
    headers: { authorization: `Bearer ${api.token}`, ...(range !== undefined ? { range } : {}) },
  })
}

/** The bytes of a file, or the error code of its refusal. */
export async function bytesOf(
  api: HttpClient,
  cid: string,
): Promise<Buffer | { code: string; details: Record<string, unknown> }> {
  const res = await download(api, cid)
  if (!res.ok) {
    const body = (await res.json()) as { error: { code: string; details: Record<string, unknown> } }
    return body.error
  }
  return Buffer.from(await res.arrayBuffer())
}

/** A message naming `files` in `room`. */
export function postWith(api: HttpClient, room: string, body: string, files: Uploaded[]) {
  return api.post<{ id: string }>(`/api/rooms/${room}/messages`, { body, attachments: files })
}
