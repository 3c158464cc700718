// What a child process (a BrokerProcess) holds, read from /proc: its resident memory and its
// open file descriptors. Tests that bound a broker's memory sample it while the load runs.
import { readdirSync, readFileSync } from 'node:fs'

export const MiB = 1024 * 1024

/** VmRSS of the process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/** How many file descriptors the process has open (sockets, files, the listener, pipes). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** Samples a process's RSS on an interval and keeps the peak; stop() ends it. */
export class RssSampler {
  readonly pid: number
  peak = 0
  samples = 0
  readonly #timer: NodeJS.Timeout

  constructor(pid: number, intervalMs = 50) {
    this.pid = pid
    this.sample()
    this.#timer = setInterval(() => this.sample(), intervalMs).unref()
  }

  /** Takes one sample now (also called on the interval); returns it. */
  sample(): number {
    let rss = 0
    try {
      rss = rssBytes(this.pid)
    } catch {
      return 0 // the process is gone: the test's own liveness check reports that
    }
    this.samples++
    if (rss > this.peak) this.peak = rss
    return rss
  }

  stop(): number {
    clearInterval(this.#timer)
    this.sample()
    return this.peak
  }
}

export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`
