// The package as a user installs it: `npm pack` builds dist/ (tsc -p tsconfig.build.json), and a
// project with tideway in its node_modules imports it as typed ESM. Node refuses to strip types
// inside node_modules, so this is what proves the published form works: the build emits
// JavaScript whose relative imports end in .js, declarations that a strict TypeScript project
// type-checks against, and an exports map that resolves both.
import assert from 'node:assert/strict'
import { cpSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/broker-process.ts'
import { run } from '../helpers/tools.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSC = join(ROOT, 'node_modules/.bin/tsc')

test('the built package imports from node_modules as typed ESM and runs a broker and a producer', { timeout: 180_000 }, async () => {
  const project = tempDir('tideway-package-')
  try {
    const installed = join(project.path, 'node_modules/tideway')
    mkdirSync(installed, { recursive: true })
    const build = await run(TSC, ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(installed, 'dist')], { timeoutMs: 150_000 })
    assert.equal(build.code, 0, build.stdout + build.stderr)
    cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'))
    cpSync(join(ROOT, 'bin'), join(installed, 'bin'), { recursive: true })
    // The package's own dependencies, as npm would have installed them beside it.
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name.startsWith('.')) continue
      symlinkSync(join(ROOT, 'node_modules', name), join(project.path, 'node_modules', name))
    }
    writeFileSync(join(project.path, 'package.json'), JSON.stringify({ type: 'module' }))
    writeFileSync(
      join(project.path, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, types: ['node'] }, files: ['service.ts'] }),
    )
    writeFileSync(
      join(project.path, 'service.ts'),
      [
        "import { createProducer, startBroker, type IncomingMessage, type Store } from 'tideway'",
        'const topicOf = (message: IncomingMessage): string => message.topic',
        'const dialect = (store: Store): string => store.dialect',
        `const broker = await startBroker({ port: 0, dataDir: ${JSON.stringify(join(project.path, 'data'))}, logger: undefined })`,
        "const producer = createProducer({ bootstrap: broker.bootstrap, delivery: 'at-least-once', autocreateTopics: true })",
        "const sent = await producer.send('orders', { value: 'hello' })",
        'await producer.close()',
        'await broker.close()',
        "console.log(JSON.stringify({ offset: String(sent.offset), helpers: typeof topicOf + typeof dialect }))",
      ].join('\n'),
    )
    const types = await run(TSC, ['-p', join(project.path, 'tsconfig.json')], { timeoutMs: 60_000 })
    assert.equal(types.code, 0, `the package's declarations type-check in a strict project:\n${types.stdout}${types.stderr}`)
    const ran = await run(process.execPath, [join(project.path, 'service.ts')], { timeoutMs: 60_000 })
    assert.equal(ran.code, 0, ran.stderr)
    assert.deepEqual(JSON.parse(ran.stdout.trim().split('\n').at(-1)!), { offset: '0', helpers: 'functionfunction' })
    const help = await run(process.execPath, [join(installed, 'bin/tideway.js'), '--help'], { timeoutMs: 30_000 })
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /tideway <command>/, 'the installed command runs the compiled CLI')
  } finally {
    project.remove()
  }
})
