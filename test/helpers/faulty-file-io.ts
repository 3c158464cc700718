// A FileIO over the real one that counts syncs and can fail chosen calls (EIO, ENOSPC), to
// test fencing and group commit without a broken disk.
import { nodeFileIO, type FileHandle, type FileIO } from '../../src/storage/file-io.ts'

export class FaultyFileIO implements FileIO {
  datasyncs = 0
  writes = 0
  /** Fail the datasync with this 1-based number (and every one after, if sticky). */
  failDatasyncAt = Number.POSITIVE_INFINITY
  failWriteAt = Number.POSITIVE_INFINITY
  failureCode: 'EIO' | 'ENOSPC' = 'EIO'

  #fail(): Error {
    return Object.assign(new Error(`${this.failureCode}: injected failure`), { code: this.failureCode })
  }

  async open(path: string, mode: 'read' | 'write'): Promise<FileHandle> {
    const inner = await nodeFileIO.open(path, mode)
    return {
      read: (buffer, position) => inner.read(buffer, position),
      write: async (buffers, position) => {
        if (++this.writes >= this.failWriteAt) throw this.#fail()
        return inner.write(buffers, position)
      },
      datasync: async () => {
        if (++this.datasyncs >= this.failDatasyncAt) throw this.#fail()
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
  readFile = nodeFileIO.readFile
  syncDir = nodeFileIO.syncDir
}
