// A simulated disk: the storage FileIO (src/storage/file-io.ts) in memory, knowing exactly what a
// power loss keeps. It is the one fake in the reliability suite, because a real disk cannot be
// made to lose its page cache on command (kill -9 keeps it; research reliability.md §6.4).
//
// What survives a power cut (`crashImage`), as on a Linux filesystem that promises no more than
// POSIX does:
// - a file's bytes as of its last datasync; bytes appended after it may survive in part: a
//   random prefix of them, which can tear a record batch in the middle;
// - any other unsynced change to a file (an overwrite, a truncation) is lost;
// - a directory entry (a created, renamed or deleted name) only as of the directory's last
//   syncDir: a new file whose directory was not synced is gone, an unsynced rename leaves the old
//   name, an unsynced unlink leaves the file.
// Every mutating call counts as one operation, and `onOperation` runs after each, so a test can
// take a crash image at every point of a workload without stopping it.
import type { FileHandle, FileIO } from '../../src/storage/file-io.ts'

interface Inode {
  data: Buffer
  synced: Buffer
}

type Entry = { readonly kind: 'file'; readonly id: number } | { readonly kind: 'dir'; readonly dir: Dir }

interface Dir {
  /** What lookups and readdir see. */
  entries: Map<string, Entry>
  /** What survives a power cut: the entries as of the last syncDir. */
  durable: Map<string, Entry>
}

/** What a power cut left: files (path -> bytes) and directories. */
export interface DiskImage {
  readonly files: ReadonlyMap<string, Buffer>
  readonly dirs: ReadonlySet<string>
}

function parts(path: string): string[] {
  return path.split('/').filter((p) => p && p !== '.')
}

function enoent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, '${path}'`), { code: 'ENOENT' })
}

const newDir = (): Dir => ({ entries: new Map(), durable: new Map() })

export class SimDisk implements FileIO {
  readonly #inodes = new Map<number, Inode>()
  readonly #root: Dir = newDir()
  #nextInode = 1
  /** Mutating operations so far. */
  operations = 0
  /** Called after every mutating operation, with its number and kind. */
  onOperation: ((operation: number, kind: string) => void) | undefined

  /** A disk holding exactly `image`, all of it durable (the state a restart finds). */
  static fromImage(image: DiskImage): SimDisk {
    const disk = new SimDisk()
    for (const dir of [...image.dirs].sort()) disk.#dirAt(dir, true, true)
    for (const [path, bytes] of image.files) {
      const names = parts(path)
      const parent = disk.#dirAt('/' + names.slice(0, -1).join('/'), true, true)!
      const id = disk.#nextInode++
      disk.#inodes.set(id, { data: Buffer.from(bytes), synced: Buffer.from(bytes) })
      const entry: Entry = { kind: 'file', id }
      parent.entries.set(names.at(-1)!, entry)
      parent.durable.set(names.at(-1)!, entry)
    }
    return disk
  }

  /**
   * What a power cut now would leave. `random` (in [0, 1)) decides how much of each file's
   * unsynced appended bytes survives; pass `() => 0` to keep only what was synced.
   */
  crashImage(random: () => number): DiskImage {
    const files = new Map<string, Buffer>()
    const dirs = new Set<string>(['/'])
    const walk = (dir: Dir, path: string) => {
      for (const [name, entry] of dir.durable) {
        const child = path === '/' ? `/${name}` : `${path}/${name}`
        if (entry.kind === 'dir') {
          dirs.add(child)
          walk(entry.dir, child)
          continue
        }
        const inode = this.#inodes.get(entry.id)!
        let bytes = inode.synced
        const appendedOnly = inode.data.length > inode.synced.length && inode.data.subarray(0, inode.synced.length).equals(inode.synced)
        if (appendedOnly) {
          const extra = inode.data.length - inode.synced.length
          bytes = inode.data.subarray(0, inode.synced.length + Math.floor(random() * (extra + 1)))
        }
        files.set(child, Buffer.from(bytes))
      }
    }
    walk(this.#root, '/')
    return { files, dirs }
  }

  /** Bytes written but not yet synced, across all files (for test diagnostics). */
  get unsyncedBytes(): number {
    let total = 0
    for (const inode of this.#inodes.values()) total += Math.max(0, inode.data.length - inode.synced.length)
    return total
  }

  #mutated(kind: string): void {
    this.operations++
    this.onOperation?.(this.operations, kind)
  }

  /** The directory at `path` in the current namespace; created (with its parents) when asked. */
  #dirAt(path: string, create: boolean, durable = false): Dir | undefined {
    let dir = this.#root
    for (const name of parts(path)) {
      const entry = dir.entries.get(name)
      if (entry?.kind === 'dir') {
        dir = entry.dir
        continue
      }
      if (entry || !create) return undefined
      const made: Entry = { kind: 'dir', dir: newDir() }
      dir.entries.set(name, made)
      if (durable) dir.durable.set(name, made)
      dir = made.dir
    }
    return dir
  }

  #lookup(path: string): { dir: Dir; name: string; entry: Entry | undefined } {
    const names = parts(path)
    const dir = this.#dirAt('/' + names.slice(0, -1).join('/'), false)
    if (!dir || names.length === 0) throw enoent(path)
    const name = names.at(-1)!
    return { dir, name, entry: dir.entries.get(name) }
  }

  async open(path: string, mode: 'read' | 'write'): Promise<FileHandle> {
    const found = this.#lookup(path)
    let entry = found.entry
    if (entry?.kind === 'dir') throw Object.assign(new Error(`EISDIR: '${path}'`), { code: 'EISDIR' })
    if (!entry) {
      if (mode === 'read') throw enoent(path)
      const id = this.#nextInode++
      this.#inodes.set(id, { data: Buffer.alloc(0), synced: Buffer.alloc(0) })
      entry = { kind: 'file', id }
      found.dir.entries.set(found.name, entry)
      this.#mutated('create')
    }
    const inode = this.#inodes.get(entry.id)!
    let closed = false
    const check = () => {
      if (closed) throw Object.assign(new Error(`EBADF: '${path}' is closed`), { code: 'EBADF' })
    }
    return {
      read: async (buffer, position) => {
        check()
        const n = Math.max(0, Math.min(buffer.length, inode.data.length - position))
        inode.data.copy(buffer, 0, position, position + n)
        return n
      },
      write: async (buffers, position) => {
        check()
        if (mode === 'read') throw Object.assign(new Error(`EBADF: '${path}' is read-only`), { code: 'EBADF' })
        const bytes = Buffer.concat(buffers)
        const data = Buffer.alloc(Math.max(inode.data.length, position + bytes.length))
        inode.data.copy(data)
        bytes.copy(data, position)
        inode.data = data
        this.#mutated('write')
      },
      datasync: async () => {
        check()
        inode.synced = Buffer.from(inode.data)
        this.#mutated('datasync')
      },
      truncate: async (length) => {
        check()
        const data = Buffer.alloc(length)
        inode.data.copy(data, 0, 0, Math.min(length, inode.data.length))
        inode.data = data
        this.#mutated('truncate')
      },
      size: async () => (check(), inode.data.length),
      close: async () => {
        closed = true
      },
    }
  }

  async mkdirp(path: string): Promise<void> {
    if (this.#dirAt(path, false)) return
    this.#dirAt(path, true)
    this.#mutated('mkdir')
  }

  async readdir(path: string): Promise<string[]> {
    const dir = this.#dirAt(path, false)
    if (!dir) throw enoent(path)
    return [...dir.entries.keys()]
  }

  async rename(from: string, to: string): Promise<void> {
    const source = this.#lookup(from)
    if (!source.entry) throw enoent(from)
    const target = this.#lookup(to)
    source.dir.entries.delete(source.name)
    target.dir.entries.set(target.name, source.entry)
    this.#mutated('rename')
  }

  async unlink(path: string): Promise<void> {
    const found = this.#lookup(path)
    if (found.entry?.kind !== 'file') throw enoent(path)
    found.dir.entries.delete(found.name)
    this.#mutated('unlink')
  }

  /**
   * rm -rf. The tree leaves the namespace at once; what a crash keeps of it is whatever its
   * parent's last syncDir recorded (a real rm -rf is many unlinks, none durable until synced).
   */
  async removeTree(path: string): Promise<void> {
    let found
    try {
      found = this.#lookup(path)
    } catch {
      return
    }
    if (!found.entry) return
    found.dir.entries.delete(found.name)
    this.#mutated('removeTree')
  }

  async exists(path: string): Promise<boolean> {
    if (parts(path).length === 0) return true
    try {
      return this.#lookup(path).entry !== undefined
    } catch {
      return false
    }
  }

  async readFile(path: string): Promise<Buffer> {
    const { entry } = this.#lookup(path)
    if (entry?.kind !== 'file') throw enoent(path)
    return Buffer.from(this.#inodes.get(entry.id)!.data)
  }

  async syncDir(path: string): Promise<void> {
    const dir = this.#dirAt(path, false)
    if (!dir) throw enoent(path)
    dir.durable = new Map(dir.entries)
    this.#mutated('syncDir')
  }
}
