// A real broker in a child process (`node src/cli/main.ts broker`), for tests that kill -9 it,
// restart it on the same data directory, or need it outside the test's own event loop.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

export function tempDir(prefix = 'tideway-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

export class BrokerProcess {
  readonly dataDir: string
  readonly extraArgs: string[]
  port = 0
  /** `http://127.0.0.1:PORT` of /metrics and the console since the last start; null when off. */
  httpUrl: string | null = null
  #child: ChildProcess | undefined
  #stderr = ''

  constructor(dataDir: string, extraArgs: string[] = []) {
    this.dataDir = dataDir
    this.extraArgs = extraArgs
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** The broker's log so far (JSON lines), for diagnosing a failed test. */
  get log(): string {
    return this.#stderr
  }

  /**
   * Starts the broker and resolves once it listens. The first start picks a free port; restarts
   * reuse it, so clients reconnect to the same address.
   */
  start(timeoutMs = 20_000): Promise<void> {
    // Restarts reuse the Kafka port; the HTTP endpoint takes a free one each time (never 8080,
    // which tests running side by side would fight over) unless the test chose one.
    const http = this.extraArgs.some((a) => a === '--http' || a.startsWith('--http=')) ? [] : ['--http', '127.0.0.1:0']
    const args = [MAIN, 'broker', '--port', String(this.port), '--data-dir', this.dataDir, ...http, ...this.extraArgs]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    this.#child = child
    return new Promise((resolve, reject) => {
      let buffered = ''
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`broker did not start within ${timeoutMs} ms:\n${this.#stderr.slice(-4000)}`))
      }, timeoutMs)
      child.stderr!.setEncoding('utf8')
      child.stderr!.on('data', (chunk: string) => {
        this.#stderr += chunk
        if (this.#stderr.length > 1_000_000) this.#stderr = this.#stderr.slice(-500_000)
        buffered += chunk
        let newline
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline)
          buffered = buffered.slice(newline + 1)
          if (!line.includes('"broker started"')) continue
          try {
            const started = JSON.parse(line) as { port: number; http: string }
            this.port = started.port
            this.httpUrl = started.http === 'off' ? null : started.http
          } catch {
            continue
          }
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`broker exited before listening (code ${code}, signal ${signal}):\n${this.#stderr.slice(-4000)}`))
      })
    })
  }

  /** kill -9: no shutdown code runs, exactly like a crash. */
  async kill9(): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** SIGTERM and wait for the exit code (graceful shutdown). */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    const code = await exited
    clearTimeout(timer)
    return code
  }
}
