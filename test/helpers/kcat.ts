// Reading a partition back with kcat (librdkafka), an independent client, for checks that must
// not trust our own decoder.
import assert from 'node:assert/strict'
import { run } from './tools.ts'

export interface StoredRecord {
  offset: number
  value: string
}

/** Every record of one partition, from the beginning to the current end. */
export async function kcatReadPartition(bootstrap: string, topic: string, partition: number): Promise<StoredRecord[]> {
  const result = await run(
    'kcat',
    ['-C', '-b', bootstrap, '-t', topic, '-p', String(partition), '-o', 'beginning', '-e', '-q', '-f', '%o\t%s\n'],
    { timeoutMs: 60_000 },
  )
  assert.equal(result.code, 0, `kcat -C failed: ${result.stderr}`)
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf('\t')
      return { offset: Number(line.slice(0, tab)), value: line.slice(tab + 1) }
    })
}
