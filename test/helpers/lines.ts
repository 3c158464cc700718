// A child process's output, line by line (the member and caller scripts report as JSON lines).
import type { Readable } from 'node:stream'

/**
 * Calls `onLine` with each whole line `stream` writes, without its newline. A last line cut
 * off by the writer's death (kill -9 mid-write) is never passed on, so it is never half-parsed.
 */
export function onLines(stream: Readable, onLine: (line: string) => void): void {
  let buffered = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    buffered += chunk
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      onLine(line)
    }
  })
}
