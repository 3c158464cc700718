#!/usr/bin/env node
// Launcher for the `tideway` command: Tideway's sources are TypeScript that Node runs directly
// (type stripping, Node >= 22.18), so this shim only checks the runtime and loads the CLI.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`tideway needs Node.js >= 22.18 (found ${process.version}); run it through npm/npx in this project, which pins Node 24.\n`)
  process.exit(1)
}
await import('../src/cli/main.ts')
