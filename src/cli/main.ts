/**
 * The `mesh` entry point: the only place that reads argv and the environment, prints,
 * or exits; everything it does goes through the node's public API or HTTP API. It wires
 * the command groups (src/cli/commands/) to one formatter (./format.ts).
 */
import { enableCompileCache } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'

// V8's compile cache goes on before the node's few hundred modules load (the command
// groups import them, hence the dynamic imports, all started at once), which takes a
// good part of the cold start off every run after the first.
enableCompileCache()
// A process started through npm or bin/mesh.js's re-spawn ends with its wrapper (./parent-watch.ts).
const { watchParents } = await import('./parent-watch.ts')
await watchParents({ env: process.env, onLost: () => process.kill(process.pid, 'SIGTERM') })
const [
  { Command },
  { MESH_NODE_VERSION },
  { HumanKeystore },
  { Output, isCommanderExit, jsonRequested, usageError },
  { idsAsOperands },
  registers,
] = await Promise.all([
  import('commander'),
  import('../config.ts'),
  import('../identity/index.ts'),
  import('./format.ts'),
  import('./dash-operands.ts'),
  // Issue 15 (cold start): only the group the command is in (all for help, none named, unknown).
  import('./groups.ts').then(({ groupsFor }) =>
    Promise.all(groupsFor(process.argv).map((group) => group.load())),
  ),
])

const env = process.env
const cli = new Command('mesh')
  .description('The Mesh node: sovereign meshes of people, agents and rooms, federated over libp2p')
  .version(MESH_NODE_VERSION)
  .option('--json', 'print JSON instead of text')
  // Commander's own errors (unknown option, missing argument, …) are thrown, not printed, and
  // printed below like any other: `error MESH_BAD_REQUEST: …`, the error shape under --json.
  // Set before the commands are registered: they inherit both.
  .exitOverride()
  .configureOutput({ outputError: () => {} })
const out = new Output({
  // argv too: an unknown option before it leaves --json unparsed.
  json: () => cli.opts<{ json?: boolean }>().json === true || jsonRequested(process.argv),
  stdout: process.stdout,
  stderr: process.stderr,
})
const ctx = {
  out,
  env,
  keystore: () => new HumanKeystore(env.MESH_KEYSTORE ?? join(homedir(), '.mesh-keys')),
}
// In the order of src/cli/groups.ts, which `mesh --help` lists them in.
for (const register of registers) {
  register(cli, ctx)
}
idsAsOperands(cli)

try {
  await cli.parseAsync(process.argv)
  // Set, not exit: `mesh start` and `mesh registry` are still running when parseAsync returns.
  if (out.exitCode !== 0) process.exitCode = out.exitCode
} catch (err) {
  // --help and --version end here too, having printed.
  if (isCommanderExit(err)) process.exit(err.exitCode)
  process.exit(out.error(usageError(err, cli, process.argv)))
}
