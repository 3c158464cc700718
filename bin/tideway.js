#!/usr/bin/env node
// Launcher for the `tideway` command. An installed package (inside node_modules) runs the
// compiled JavaScript in dist/ (`npm pack` builds it; Node does not strip types inside
// node_modules); a checkout of the repository runs the TypeScript sources directly (type
// stripping, Node >= 22.18), never a dist/ a local build may have left behind.

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`tideway needs Node.js >= 22.18 (found ${process.version}); run it through npm/npx in this project, which pins Node 24.\n`)
  process.exit(1)
}
const installed = import.meta.url.includes('/node_modules/')
await import(installed ? '../dist/cli/main.js' : '../src/cli/main.ts')
