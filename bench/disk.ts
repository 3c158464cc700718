// The disk's own limits, measured in the same run as the brokers: a durable broker can beat
// neither one fdatasync per record for a single synchronous producer, nor the bytes one
// fdatasync of 64 KiB moves for batched writes.
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import type { Measured } from './systems/types.ts'

/** Writes `bytesPerSync` at a time, each followed by fdatasync, for `seconds`. One latency per sync. */
export async function fdatasyncLoop(dir: string, bytesPerSync: number, seconds: number): Promise<Measured> {
  const file = await open(join(dir, `raw-${bytesPerSync}.dat`), 'w')
  const chunk = Buffer.alloc(bytesPerSync, 'x')
  const latenciesMs: number[] = []
  let position = 0
  const start = performance.now()
  try {
    while (performance.now() - start < seconds * 1000) {
      const t0 = performance.now()
      await file.write(chunk, 0, chunk.length, position)
      await file.datasync()
      latenciesMs.push(performance.now() - t0)
      position += chunk.length
    }
  } finally {
    await file.close()
  }
  // Counted in 1 KiB records, so records/s compares with the brokers' 1 KiB rows.
  return { records: position / 1024, bytes: position, elapsedMs: performance.now() - start, latenciesMs }
}
