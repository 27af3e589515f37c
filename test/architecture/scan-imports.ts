/**
 * Finds the module specifiers a TypeScript/TSX source imports, without a parser.
 *
 * The installed `typescript` is the native (Go) compiler, which has no stable JS API, so the
 * architecture test scans the text itself: a small lexer first blanks comments and the bodies of
 * strings, templates and regular expressions (so `import` inside them is never seen) and keeps each
 * string literal's value, then a few patterns read the import forms off the blanked text.
 * Type-only imports are found too: `import type` is an arrow between parts like any other.
 */

export type ImportKind = 'static' | 'type' | 're-export' | 'side-effect' | 'dynamic'

export interface FoundImport {
  specifier: string
  kind: ImportKind
  /** 1-based line of the `import`/`export` keyword. */
  line: number
}

/** Marker that stands in for the n-th string literal in the blanked text: `"#n"`. */
const literal = (n: number): string => `"#${n}"`

// After these a `/` starts a regular expression; after anything else it divides.
const REGEX_AFTER_WORD = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'yield',
  'await',
])
// `<` and `>` are left out: in TSX `</div>` is a closing tag, not a regex.
const REGEX_AFTER_PUNCT = new Set([...'(,=:[!&|?{};+-*%~^'])

interface Blanked {
  /** The source with comments, string and template bodies and regexes replaced; same line breaks. */
  text: string
  /** Values of the string literals, by the index in their `"#n"` marker. */
  strings: string[]
}

/** Blanks everything an import pattern must not look into. Line breaks are kept so lines still count. */
export function blank(source: string): Blanked {
  const out: string[] = []
  const strings: string[] = []
  // Brace depth at which each open template's `${` began: `}` at that depth resumes the template.
  const templates: number[] = []
  let depth = 0
  let lastSignificant = '' // last non-space token character, or a word
  let i = 0
  const n = source.length
  const keepBreaks = (s: string): string => s.replace(/[^\n]/g, ' ')

  const readTemplate = (): void => {
    // Called just after a backtick or a `}` that closes `${…}`; reads up to the closing backtick or `${`.
    while (i < n) {
      const c = source[i]
      if (c === '\\') {
        out.push(keepBreaks(source.slice(i, i + 2)))
        i += 2
      } else if (c === '`') {
        out.push('`')
        i++
        lastSignificant = '`'
        return
      } else if (c === '$' && source[i + 1] === '{') {
        out.push('${')
        i += 2
        templates.push(depth)
        depth++
        lastSignificant = '{'
        return
      } else {
        out.push(c === '\n' ? '\n' : ' ')
        i++
      }
    }
  }

  while (i < n) {
    const c = source[i] as string
    const next = source[i + 1]
    if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i)
      const stop = end === -1 ? n : end
      out.push(' '.repeat(stop - i))
      i = stop
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2)
      const stop = end === -1 ? n : end + 2
      out.push(keepBreaks(source.slice(i, stop)))
      i = stop
    } else if (c === "'" || c === '"') {
      // A quote in JSX text (`Don't`) is not a string; ending every string at a line break keeps
      // such a stray quote from swallowing more than the rest of its line.
      let j = i + 1
      let value = ''
      while (j < n && source[j] !== c && source[j] !== '\n') {
        if (source[j] === '\\') {
          value += source.slice(j, j + 2)
          j += 2
        } else {
          value += source[j]
          j++
        }
      }
      strings.push(value)
      const marker = literal(strings.length - 1)
      const width = Math.min(j + 1, n) - i
      out.push(marker.length <= width ? marker + ' '.repeat(width - marker.length) : marker)
      i = Math.min(j + 1, n)
      lastSignificant = '"'
    } else if (c === '`') {
      out.push('`')
      i++
      readTemplate()
    } else if (
      c === '/' &&
      (lastSignificant === '' ||
        REGEX_AFTER_PUNCT.has(lastSignificant) ||
        REGEX_AFTER_WORD.has(lastSignificant))
    ) {
      let j = i + 1
      let inClass = false
      while (j < n && source[j] !== '\n') {
        const d = source[j]
        if (d === '\\') j += 2
        else {
          if (d === '[') inClass = true
          else if (d === ']') inClass = false
          else if (d === '/' && !inClass) break
          j++
        }
      }
      if (source[j] === '/') j++
      while (j < n && /[a-z]/i.test(source[j] as string)) j++
      out.push(' '.repeat(Math.min(j, n) - i))
      i = Math.min(j, n)
      lastSignificant = 'regex'
    } else if (c === '{') {
      depth++
      out.push(c)
      i++
      lastSignificant = c
    } else if (c === '}') {
      depth--
      i++
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        templates.pop()
        out.push('}')
        readTemplate()
      } else {
        out.push('}')
        lastSignificant = '}'
      }
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1
      while (j < n && /[\w$]/.test(source[j] as string)) j++
      const word = source.slice(i, j)
      out.push(word)
      i = j
      lastSignificant = word
    } else {
      out.push(c)
      i++
      if (!/\s/.test(c)) lastSignificant = c
    }
  }
  return { text: out.join(''), strings }
}

// `(?<![.\w$])` keeps `x.import(` and `reimport` out; `[^;"()]*?` stops a clause at a statement end
// or a string, so `export const a = 'b'` never reads as a re-export; nor does it run over another
// `import`/`export` (statements need no semicolon here).
const STATIC =
  /(?<![.\w$])(import|export)(\s+type\b)?((?:(?!\b(?:import|export)\b)[^;"()])*?)\bfrom\s*"#(\d+)"/g
const SIDE_EFFECT = /(?<![.\w$])import\s*"#(\d+)"/g
const DYNAMIC = /(?<![.\w$])import\s*\(\s*"#(\d+)"/g

/** Every import of `source`, in source order. Type-only imports are included (kind `type`). */
export function scanImports(source: string): FoundImport[] {
  const { text, strings } = blank(source)
  const lineAt = (offset: number): number => {
    let line = 1
    for (let k = 0; k < offset; k++) if (text.charCodeAt(k) === 10) line++
    return line
  }
  const found: Array<FoundImport & { at: number }> = []
  for (const m of text.matchAll(STATIC)) {
    const kind: ImportKind = m[2] ? 'type' : m[1] === 'export' ? 're-export' : 'static'
    found.push({ specifier: strings[Number(m[4])] as string, kind, line: lineAt(m.index), at: m.index })
  }
  for (const m of text.matchAll(SIDE_EFFECT)) {
    found.push({
      specifier: strings[Number(m[1])] as string,
      kind: 'side-effect',
      line: lineAt(m.index),
      at: m.index,
    })
  }
  for (const m of text.matchAll(DYNAMIC)) {
    found.push({
      specifier: strings[Number(m[1])] as string,
      kind: 'dynamic',
      line: lineAt(m.index),
      at: m.index,
    })
  }
  return found.sort((a, b) => a.at - b.at).map(({ specifier, kind, line }) => ({ specifier, kind, line }))
}
