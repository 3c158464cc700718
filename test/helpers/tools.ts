// External tools the integration tests drive (kcat, Debian's python3 with confluent-kafka).
// A missing tool FAILS the test with the command that installs it: a test never skips silently.
import { spawn, spawnSync } from 'node:child_process'

export const PYTHON = '/usr/bin/python3'

export function requireTool(command: string, args: string[], installHint: string): void {
  const probe = spawnSync(command, args, { timeout: 10_000, encoding: 'utf8' })
  if (probe.error || probe.status !== 0) {
    throw new Error(`${command} is not usable (${probe.error?.message ?? probe.stderr.trim()}); ${installHint}`)
  }
}

export function requireKcat(): void {
  requireTool('kcat', ['-V'], 'install it with `apt-get install kcat` (bash .ci/run does this)')
}

export function requirePythonKafka(): void {
  requireTool(
    PYTHON,
    ['-c', 'import confluent_kafka'],
    'install it with `apt-get install python3-confluent-kafka` (bash .ci/run does this)',
  )
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs a command to completion with a hard timeout (the child is killed when it expires). */
export function run(
  command: string,
  args: string[],
  { input, timeoutMs = 60_000, env }: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => stdout.push(c))
    child.stderr.on('data', (c: Buffer) => stderr.push(c))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}
