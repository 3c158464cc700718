// The shop's processes, each a child of main.ts: started and waited for (bounded), restarted when
// they die unplanned, kill -9ed on purpose by the chaos run, and all stopped on the way out.
// Every pid ever spawned is written to pids.json in the data directory, so whoever started the
// demo can end stragglers by id even if this process itself was killed.
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

export interface ChildSpec {
  readonly name: string
  readonly args: readonly string[]
  readonly env?: NodeJS.ProcessEnv
  /** A line of the child's output that says it is serving; may also read facts from it. */
  readonly isReady: (line: string) => boolean
  /** Sees every line of the child's output. */
  readonly onLine?: (line: string) => void
  /** Restart args once the first start has taught us something (the broker's port). */
  readonly restartArgs?: () => readonly string[]
}

const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 10_000

export class Supervisor {
  readonly #dataDir: string
  readonly #children = new Map<string, Child>()
  readonly #pids: Record<string, number[]> = {}

  constructor(dataDir: string) {
    this.#dataDir = dataDir
  }

  add(spec: ChildSpec): Child {
    const child = new Child(spec, createWriteStream(join(this.#dataDir, 'logs', `${spec.name}.log`), { flags: 'a' }), (pid) => {
      ;(this.#pids[spec.name] ??= []).push(pid)
      writeFileSync(join(this.#dataDir, 'pids.json'), JSON.stringify(this.#pids))
    })
    this.#children.set(spec.name, child)
    return child
  }

  get(name: string): Child {
    const child = this.#children.get(name)
    if (!child) throw new Error(`no process named ${name}`)
    return child
  }

  get children(): Child[] {
    return [...this.#children.values()]
  }

  /** SIGTERM to all but `last`, then to `last` (the broker goes after its clients). */
  async stopAll(last?: string): Promise<void> {
    await Promise.all(this.children.filter((c) => c.name !== last).map((c) => c.stop()))
    if (last) await this.#children.get(last)?.stop()
  }

  /** Synchronous last resort, for process exit: SIGKILL whatever still runs. */
  killAllNow(): void {
    for (const child of this.children) child.killNow()
  }
}

export class Child {
  readonly name: string
  readonly #spec: ChildSpec
  readonly #log: WriteStream
  readonly #onSpawn: (pid: number) => void
  #process: ChildProcess | null = null
  #wanted = false
  #starts = 0
  /** Exits nobody asked for (not a chaos kill, not a stop): each one is restarted. */
  crashes = 0
  kills = 0

  constructor(spec: ChildSpec, log: WriteStream, onSpawn: (pid: number) => void) {
    this.name = spec.name
    this.#spec = spec
    this.#log = log
    this.#onSpawn = onSpawn
  }

  get running(): boolean {
    return this.#process !== null
  }

  /** Starts the process and resolves once it reports ready; rejects (and kills it) after 30 s. */
  start(): Promise<void> {
    this.#wanted = true
    const args = this.#starts++ > 0 && this.#spec.restartArgs ? this.#spec.restartArgs() : this.#spec.args
    // Its own process group: a Ctrl-C in the terminal reaches main.ts only, which stops the
    // children in order instead of having them all quit at once.
    const child = spawn(process.execPath, args, { env: { ...process.env, ...this.#spec.env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true })
    this.#process = child
    if (child.pid) this.#onSpawn(child.pid)
    return new Promise<void>((resolve, reject) => {
      let ready = false
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`${this.name} did not get ready within ${START_TIMEOUT_MS} ms (see logs/${this.name}.log)`))
      }, START_TIMEOUT_MS)
      const watch = (stream: NodeJS.ReadableStream) => {
        let buffered = ''
        stream.setEncoding('utf8')
        stream.on('data', (chunk: string) => {
          this.#log.write(chunk)
          buffered += chunk
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const line = buffered.slice(0, nl)
            buffered = buffered.slice(nl + 1)
            this.#spec.onLine?.(line)
            if (!ready && this.#spec.isReady(line)) {
              ready = true
              clearTimeout(timer)
              resolve()
            }
          }
        })
      }
      watch(child.stdout!)
      watch(child.stderr!)
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        if (this.#process === child) this.#process = null
        this.#log.write(`--- ${this.name} exited (code ${code}, signal ${signal})\n`)
        if (!ready) reject(new Error(`${this.name} exited before it was ready (code ${code}, signal ${signal}; see logs/${this.name}.log)`))
        else if (this.#wanted && this.#process === null) {
          this.crashes++
          void this.#restartLater()
        }
      })
    })
  }

  async #restartLater(): Promise<void> {
    for (let attempt = 0; this.#wanted && this.#process === null && attempt < 20; attempt++) {
      await delay(1_000)
      if (!this.#wanted || this.#process !== null) return
      try {
        await this.start()
        return
      } catch {
        // Dependencies may be down (the broker, during chaos): try again.
      }
    }
  }

  /** kill -9: no shutdown code runs, as in a crash. Not restarted: the caller does that. */
  async kill9(): Promise<void> {
    const child = this.#process
    this.#wanted = false
    if (!child) return
    this.kills++
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  async stop(): Promise<void> {
    this.#wanted = false
    const child = this.#process
    if (!child) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }

  killNow(): void {
    this.#wanted = false
    this.#process?.kill('SIGKILL')
  }

  /** Restarts a process that is down, retrying while its dependencies come back (bounded). */
  async ensureRunning(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.running) {
      try {
        await this.start()
      } catch (err) {
        if (Date.now() > deadline) throw err
        await delay(1_000)
      }
    }
  }
}
