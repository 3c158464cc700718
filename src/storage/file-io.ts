// The one interface every byte of storage goes through, so tests can swap the disk: a faulty
// one that fails the Nth fsync, or a simulated one that loses unsynced bytes at a "power cut".
// Durability needs two kinds of sync: `datasync` for a file's bytes, and `syncDir` after a file
// is created, renamed or deleted, or the directory entry itself may not survive a power loss.

import { open, mkdir, readdir, rename, unlink, rm, stat, readFile } from 'node:fs/promises'

export interface FileHandle {
  /** Reads up to buffer.length bytes at `position`; returns how many were read. */
  read(buffer: Buffer, position: number): Promise<number>
  /** Writes all the buffers, in order, starting at `position` (partial writes are retried). */
  write(buffers: readonly Buffer[], position: number): Promise<void>
  datasync(): Promise<void>
  truncate(length: number): Promise<void>
  size(): Promise<number>
  close(): Promise<void>
}

export interface FileIO {
  /** `read`: must exist. `write`: created if missing, never truncated. */
  open(path: string, mode: 'read' | 'write'): Promise<FileHandle>
  mkdirp(path: string): Promise<void>
  readdir(path: string): Promise<string[]>
  rename(from: string, to: string): Promise<void>
  unlink(path: string): Promise<void>
  removeTree(path: string): Promise<void>
  exists(path: string): Promise<boolean>
  readFile(path: string): Promise<Buffer>
  syncDir(path: string): Promise<void>
}

export const nodeFileIO: FileIO = {
  async open(path, mode) {
    const handle = await open(path, mode === 'read' ? 'r' : 'a+')
    // 'a+' would force every write to the end; reopen read-write now that the file exists.
    if (mode === 'write') {
      await handle.close()
      return wrap(await open(path, 'r+'))
    }
    return wrap(handle)
  },
  mkdirp: async (path) => void (await mkdir(path, { recursive: true })),
  readdir: (path) => readdir(path),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  removeTree: (path) => rm(path, { recursive: true, force: true }),
  async exists(path) {
    try {
      await stat(path)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
  },
  readFile: (path) => readFile(path),
  async syncDir(path) {
    const dir = await open(path, 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  },
}

function wrap(handle: import('node:fs/promises').FileHandle): FileHandle {
  return {
    async read(buffer, position) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position)
      return bytesRead
    },
    async write(buffers, position) {
      let pending = buffers.filter((b) => b.length > 0)
      while (pending.length > 0) {
        const { bytesWritten } = await handle.writev(pending, position)
        position += bytesWritten
        let skip = bytesWritten
        const rest: Buffer[] = []
        for (const b of pending) {
          if (skip >= b.length) skip -= b.length
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b)
            skip = 0
          }
        }
        pending = rest
      }
    },
    datasync: () => handle.datasync(),
    truncate: (length) => handle.truncate(length),
    size: async () => (await handle.stat()).size,
    close: () => handle.close(),
  }
}

/** Replaces a small file atomically and durably: temp file, fsync, rename, fsync the directory. */
export async function writeFileDurably(io: FileIO, dir: string, name: string, data: Buffer): Promise<void> {
  const temp = `${dir}/${name}.tmp`
  const file = await io.open(temp, 'write')
  try {
    await file.truncate(0)
    await file.write([data], 0)
    await file.datasync()
  } finally {
    await file.close()
  }
  await io.rename(temp, `${dir}/${name}`)
  await io.syncDir(dir)
}
