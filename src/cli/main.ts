/**
 * The `mesh` entry point. V8's compile cache goes on before the node's few hundred
 * modules load (they are imported by ./commands.ts), which takes a good part of the
 * cold start off every run after the first.
 */
import { enableCompileCache } from 'node:module'

enableCompileCache()
await import('./commands.ts')
