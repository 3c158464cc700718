// A FileIO over the real one that counts calls and can fail or hold chosen ones, to test
// fencing, group commit and recovery without a broken disk. Failures are plain Errors carrying an
// errno-style `code` (EIO, ENOSPC), as node:fs raises them.
import { nodeFileIO, type FileHandle, type FileIO } from '../../src/storage/file-io.ts'

export class FaultyFileIO implements FileIO {
  datasyncs = 0
  writes = 0
  syncDirs = 0
  bytesRead = 0
  /** Fail the datasync with this 1-based number and every one after it. */
  failDatasyncAt = Number.POSITIVE_INFINITY
  /** Fail the write with this 1-based number and every one after it. */
  failWriteAt = Number.POSITIVE_INFINITY
  failureCode: 'EIO' | 'ENOSPC' = 'EIO'
  #held: { started: () => void; released: Promise<void> } | null = null
  #heldRead: { started: () => void; released: Promise<void> } | null = null

  /**
   * Makes the next datasync wait until `release()` is called. `started` resolves once it is
   * waiting, so a test can act "while a sync is in flight" without sleeping. The held sync
   * still fails if failDatasyncAt says so when it is released.
   */
  holdNextDatasync(): { started: Promise<void>; release: () => void } {
    const { hold, handle } = makeHold()
    this.#held = hold
    return handle
  }

  /** Like holdNextDatasync, for the next read of any file opened through this FileIO. */
  holdNextRead(): { started: Promise<void>; release: () => void } {
    const { hold, handle } = makeHold()
    this.#heldRead = hold
    return handle
  }

  #fail(): Error {
    return Object.assign(new Error(`${this.failureCode}: injected failure`), { code: this.failureCode })
  }

  async open(path: string, mode: 'read' | 'write'): Promise<FileHandle> {
    const inner = await nodeFileIO.open(path, mode)
    return {
      read: async (buffer, position) => {
        const held = this.#heldRead
        if (held) {
          this.#heldRead = null
          held.started()
          await held.released
        }
        const n = await inner.read(buffer, position)
        this.bytesRead += n
        return n
      },
      write: async (buffers, position) => {
        if (++this.writes >= this.failWriteAt) throw this.#fail()
        return inner.write(buffers, position)
      },
      datasync: async () => {
        const number = ++this.datasyncs
        const held = this.#held
        if (held) {
          this.#held = null
          held.started()
          await held.released
        }
        if (number >= this.failDatasyncAt) throw this.#fail()
        return inner.datasync()
      },
      truncate: (length) => inner.truncate(length),
      size: () => inner.size(),
      close: () => inner.close(),
    }
  }
  mkdirp = nodeFileIO.mkdirp
  readdir = nodeFileIO.readdir
  rename = nodeFileIO.rename
  unlink = nodeFileIO.unlink
  removeTree = nodeFileIO.removeTree
  exists = nodeFileIO.exists
  async readFile(path: string): Promise<Buffer> {
    const content = await nodeFileIO.readFile(path)
    this.bytesRead += content.length
    return content
  }
  syncDir = async (path: string): Promise<void> => {
    this.syncDirs++
    return nodeFileIO.syncDir(path)
  }
}

function makeHold() {
  let started!: () => void
  let release!: () => void
  const startedPromise = new Promise<void>((resolve) => (started = resolve))
  const released = new Promise<void>((resolve) => (release = resolve))
  return { hold: { started, released }, handle: { started: startedPromise, release } }
}
