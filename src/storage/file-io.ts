// The one interface every byte of storage goes through, so tests can swap the disk: a faulty
// one that fails the Nth fsync, or a simulated one that loses unsynced bytes at a "power cut".
// Keep it small: each method is one system call's worth of meaning, so a simulated disk can
// model exactly what survives a crash.
//
// Durability needs two kinds of sync: `datasync` for a file's bytes, and `syncDir` after a file
// is created, renamed or deleted, or the directory entry itself may not survive a power loss.

import { constants } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle as NodeFileHandle } from 'node:fs/promises'

export interface FileHandle {
  /** Reads up to buffer.length bytes at `position`; returns how many were read (0 at the end). */
  read(buffer: Buffer, position: number): Promise<number>
  /** Writes all the buffers, in order, starting at `position` (partial writes are continued). */
  write(buffers: readonly Buffer[], position: number): Promise<void>
  /** fdatasync: the bytes written so far survive a power loss once this resolves. */
  datasync(): Promise<void>
  truncate(length: number): Promise<void>
  size(): Promise<number>
  close(): Promise<void>
}

export interface FileIO {
  /** `read`: the file must exist. `write`: read-write, created if missing, never truncated. */
  open(path: string, mode: 'read' | 'write'): Promise<FileHandle>
  mkdirp(path: string): Promise<void>
  readdir(path: string): Promise<string[]>
  rename(from: string, to: string): Promise<void>
  unlink(path: string): Promise<void>
  /** rm -rf: removes a directory tree; a missing path is not an error. */
  removeTree(path: string): Promise<void>
  exists(path: string): Promise<boolean>
  readFile(path: string): Promise<Buffer>
  /** fsync of a directory, making creates, renames and unlinks inside it durable. */
  syncDir(path: string): Promise<void>
}

export const nodeFileIO: FileIO = {
  async open(path, mode) {
    const flags = mode === 'read' ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT
    return wrap(await open(path, flags, 0o644))
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
    const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY)
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  },
}

function wrap(handle: NodeFileHandle): FileHandle {
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
        pending = dropWritten(pending, bytesWritten)
      }
    },
    datasync: () => handle.datasync(),
    truncate: (length) => handle.truncate(length),
    size: async () => (await handle.stat()).size,
    close: () => handle.close(),
  }
}

/** What is left of `buffers` after the first `written` bytes went out. */
function dropWritten(buffers: Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = []
  for (const b of buffers) {
    if (written >= b.length) written -= b.length
    else {
      rest.push(written > 0 ? b.subarray(written) : b)
      written = 0
    }
  }
  return rest
}

/**
 * mkdir -p whose result survives a power loss: each directory it creates is made durable in its
 * parent (syncDir of the parent), top-down, so a new data directory does not vanish with its
 * contents because only the files inside it were synced.
 */
export async function mkdirDurably(io: FileIO, path: string): Promise<void> {
  const absolute = path.startsWith('/')
  const names = path.split('/').filter(Boolean)
  const missing: string[] = []
  for (let i = names.length; i > 0; i--) {
    const prefix = (absolute ? '/' : '') + names.slice(0, i).join('/')
    if (await io.exists(prefix)) break
    missing.unshift(prefix)
  }
  if (missing.length === 0) return
  await io.mkdirp(path)
  for (const dir of missing) {
    const cut = dir.lastIndexOf('/')
    await io.syncDir(cut <= 0 ? (absolute ? '/' : '.') : dir.slice(0, cut))
  }
}

/**
 * Replaces a small file atomically and durably: write a temp file, fsync it, rename it over the
 * target, fsync the directory. A crash leaves either the old content or the new, plus at most a
 * stray `<name>.tmp` that the owner deletes on open.
 */
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
