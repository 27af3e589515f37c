/**
 * Issue 15 (b6peer): the JCS text of a message entry, written out. Every message a peer
 * sends is hashed in its canonical form (`contentId`), and the generic walk (identity/jcs.ts:
 * keys listed and sorted, each key and string tested for a lone surrogate, each written by
 * JSON.stringify) cost as much as the hash. A message of the usual shape — exactly the
 * members `v`, `room`, `author`, `authorMesh`, `body`, `mentions`, `ts` and maybe `replyTo`,
 * plain strings, a finite number, an array of strings, no `toJSON` — is written here member
 * by member in JCS order (UTF-16 order of the names: author, authorMesh, body, mentions,
 * replyTo, room, ts, v). Anything else (another member, `attachments`, another type, a
 * string with a lone surrogate, which the generic path refuses) returns undefined:
 * the caller takes the generic path, which writes the same text for what this writes.
 */
const json = JSON.stringify
const SURROGATE = /[\uD800-\uDFFF]/
// In unicode mode a pair of surrogates is one code point: only a lone one is a Cs (refused by JCS).
const LONE_SURROGATE = /\p{Cs}/u
const MEMBERS = new Set(['v', 'room', 'author', 'authorMesh', 'body', 'mentions', 'ts'])

/** `jcs(value)` when `value` is a message entry of the usual shape, else undefined. */
export function messageEntryText(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const v = value as Record<string, unknown>
  if (typeof v.toJSON === 'function') return undefined
  // Exactly these own enumerable members (a `replyTo: undefined` is left out, as JCS does).
  const keys = Object.keys(v)
  let withReply = false
  for (const key of keys) {
    if (key === 'replyTo') withReply = true
    else if (!MEMBERS.has(key)) return undefined
  }
  if (keys.length !== (withReply ? 8 : 7)) return undefined
  const { author, authorMesh, body, mentions, room, ts } = v
  const replyTo = withReply ? v.replyTo : undefined
  if (
    v.v !== 1 ||
    typeof author !== 'string' ||
    typeof authorMesh !== 'string' ||
    typeof body !== 'string' ||
    typeof room !== 'string' ||
    typeof ts !== 'number' ||
    !Number.isFinite(ts) ||
    !Array.isArray(mentions) ||
    typeof (mentions as { toJSON?: unknown }).toJSON === 'function' ||
    (replyTo !== undefined && typeof replyTo !== 'string')
  )
    return undefined
  if (!plain(author) || !plain(authorMesh) || !plain(body) || !plain(room)) return undefined
  let list = '['
  for (let i = 0; i < mentions.length; i++) {
    const m: unknown = mentions[i]
    // A hole reads undefined (not a string): the generic path.
    if (typeof m !== 'string' || !plain(m)) return undefined
    list += i === 0 ? json(m) : `,${json(m)}`
  }
  let reply = ''
  if (replyTo !== undefined) {
    if (!plain(replyTo)) return undefined
    reply = `,"replyTo":${json(replyTo)}`
  }
  return (
    `{"author":${json(author)},"authorMesh":${json(authorMesh)},"body":${json(body)},` +
    `"mentions":${list}]${reply},"room":${json(room)},"ts":${json(ts)},"v":1}`
  )
}

/** No lone surrogate (pairs are written by JSON.stringify as they are, in both paths). */
function plain(s: string): boolean {
  return !SURROGATE.test(s) || !LONE_SURROGATE.test(s)
}
