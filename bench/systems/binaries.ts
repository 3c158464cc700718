// The peer servers the bench runs beside Tideway: where their binaries are, and how a private
// instance of one is started on a free port and stopped again.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { access, chmod, constants, copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface ServerBinary {
  readonly path: string
  readonly version: string
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
// sync_interval (JetStream's fsync setting) needs nats-server >= 2.10; Debian 12 ships 2.9.10.
const NATS_VERSION = '2.10.27'
const NATS_DEB = 'http://deb.debian.org/debian/pool/main/n/nats-server/nats-server_2.10.27-1%2Bb2_amd64.deb'
const NATS_CACHED = join(REPO_ROOT, '.cache', 'bench', `nats-server-${NATS_VERSION}`, 'nats-server')
const DOWNLOAD_TIMEOUT_MS = 120_000
const COMMAND_TIMEOUT_MS = 10_000

/** nats-server >= 2.10: $NATS_SERVER, else the cached copy, else Debian trixie's package, downloaded once. */
export async function natsServer(): Promise<ServerBinary> {
  const path = process.env.NATS_SERVER ?? ((await isExecutable(NATS_CACHED)) ? NATS_CACHED : await downloadNatsServer())
  const { stdout } = await run(path, ['--version'], { timeout: COMMAND_TIMEOUT_MS })
  // Prints `nats-server: v2.10.27`.
  const version = /v(\d+)\.(\d+)\.(\d+)/.exec(stdout)
  if (!version) throw new Error(`${path} --version printed no version: ${stdout.trim()}`)
  const [, major, minor] = version.map(Number) as [number, number, number]
  if (major < 2 || (major === 2 && minor < 10)) {
    throw new Error(`${path} is nats-server ${version[0]}; the bench needs >= 2.10 for JetStream's sync_interval`)
  }
  return { path, version: version[0].slice(1) }
}

/** redis-server: $REDIS_SERVER, else Debian's /usr/bin/redis-server. */
export async function redisServer(): Promise<ServerBinary> {
  const path = process.env.REDIS_SERVER ?? '/usr/bin/redis-server'
  const { stdout } = await run(path, ['--version'], { timeout: COMMAND_TIMEOUT_MS })
  // Prints `Redis server v=7.0.15 sha=… malloc=… bits=64 build=…`.
  const version = /v=(\S+)/.exec(stdout)?.[1]
  if (!version) throw new Error(`${path} --version printed no version: ${stdout.trim()}`)
  return { path, version }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

async function downloadNatsServer(): Promise<string> {
  process.stderr.write(`bench: downloading nats-server ${NATS_VERSION} (Debian package, 4.5 MB) into ${dirname(NATS_CACHED)}\n`)
  const response = await fetch(NATS_DEB, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) })
  if (!response.ok) throw new Error(`downloading ${NATS_DEB}: HTTP ${response.status}`)
  const work = await mkdtemp(join(tmpdir(), 'tideway-bench-nats-deb-'))
  try {
    const deb = join(work, 'nats-server.deb')
    await writeFile(deb, Buffer.from(await response.arrayBuffer()))
    await run('dpkg-deb', ['-x', deb, join(work, 'root')], { timeout: COMMAND_TIMEOUT_MS })
    await mkdir(dirname(NATS_CACHED), { recursive: true })
    // Copied under a temporary name and renamed: a run interrupted mid-copy leaves no half binary.
    const partial = `${NATS_CACHED}.partial`
    await copyFile(join(work, 'root', 'usr', 'sbin', 'nats-server'), partial)
    await chmod(partial, 0o755)
    await rename(partial, NATS_CACHED)
    return NATS_CACHED
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** A port nothing listens on right now, chosen by the OS. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port assigned'))))
    })
  })
}

/** A server in a child process, killed with the bench should the bench exit without stopping it. */
export class ServerProcess {
  readonly #child: ChildProcess
  readonly #label: string
  #output = ''
  readonly #killOnExit = () => this.#child.kill('SIGKILL')

  constructor(label: string, path: string, args: readonly string[]) {
    this.#label = label
    this.#child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => (this.#output = (this.#output + chunk).slice(-8000)))
    }
    process.once('exit', this.#killOnExit)
  }

  get #exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null
  }

  /** Resolves once the port accepts a TCP connection; fails if the server exits or `timeoutMs` passes. */
  async waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (!(await accepts(port))) {
      if (this.#exited) throw new Error(`${this.#label} exited before listening on ${port}:\n${this.#output}`)
      if (performance.now() > deadline) throw new Error(`${this.#label} did not listen on ${port} within ${timeoutMs} ms:\n${this.#output}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    process.removeListener('exit', this.#killOnExit)
    if (this.#exited) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.setTimeout(1_000)
    const settle = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => settle(true))
    socket.once('error', () => settle(false))
    socket.once('timeout', () => settle(false))
  })
}

// `node bench/systems/binaries.ts`: fetch and check the peer binaries ahead of time (.ci/run).
if (import.meta.main) {
  for (const binary of [await natsServer(), await redisServer()]) process.stdout.write(`${binary.path} ${binary.version}\n`)
}
