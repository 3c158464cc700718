// Committed offsets under kill -9: OffsetCommit requests stream in (generation -1 on an empty
// group, which is how admin tools and kcat commit) while the broker is killed at a random moment,
// 3 cycles. After each restart OffsetFetch returns, per partition, at least the last acknowledged
// commit and never more than the last one sent (an unacknowledged commit may or may not land).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { OffsetCommit, OffsetFetch } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { totalsLine } from '../helpers/history.ts'
import { RawClient } from '../helpers/raw-client.ts'

const CYCLES = Number(process.env.OFFSET_CRASH_CYCLES ?? 3)
const PARTITIONS = 4
const topic = `offsets-crash-${process.pid}`
const groupId = `offsets-crash-group-${process.pid}`
const dir = tempDir('tideway-offsets-crash-')
const broker = new BrokerProcess(dir.path)
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

before(async () => {
  await broker.start()
  await createTopic(broker.bootstrap, topic, PARTITIONS)
})
after(async () => {
  await broker.kill9()
  dir.remove()
})

async function commit(client: RawClient, partition: number, offset: bigint): Promise<number> {
  const response = await client.request(
    OffsetCommit,
    8,
    {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, committedOffset: offset, committedMetadata: null }] }],
    },
    5_000,
  )
  return response.topics[0]!.partitions[0]!.errorCode
}

test(`acknowledged offset commits survive ${CYCLES} kill -9 cycles`, { timeout: 300_000 }, async (t) => {
  const lastAcked = new Array<bigint>(PARTITIONS).fill(-1n)
  const lastSent = new Array<bigint>(PARTITIONS).fill(-1n)
  let seed = Number(process.env.SEED ?? 11)
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  let next = 0n
  let acknowledged = 0

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    let running = true
    const committers = Array.from({ length: PARTITIONS }, async (_, partition) => {
      let client: RawClient | undefined
      while (running) {
        try {
          client ??= await RawClient.connect(broker.bootstrap)
          const offset = ++next
          lastSent[partition] = offset
          if ((await commit(client, partition, offset)) === ErrorCode.NONE) {
            lastAcked[partition] = offset
            acknowledged++
          }
        } catch {
          client?.close()
          client = undefined
          await pause(20) // the broker is down: yield to the event loop and retry
        }
      }
      client?.close()
    })
    await pause(200 + Math.floor(random() * 600))
    await broker.kill9()
    running = false
    await Promise.all(committers)
    await broker.start()

    const reader = await RawClient.connect(broker.bootstrap)
    try {
      const fetched = await reader.request(OffsetFetch, 8, { groups: [{ groupId, topics: [{ name: topic, partitionIndexes: [0, 1, 2, 3] }] }] })
      const group = fetched.groups[0]!
      assert.equal(group.errorCode, ErrorCode.NONE)
      for (const { partitionIndex, committedOffset } of group.topics[0]!.partitions) {
        assert.ok(committedOffset >= lastAcked[partitionIndex]!, `cycle ${cycle} partition ${partitionIndex}: ${committedOffset} >= last acknowledged ${lastAcked[partitionIndex]}`)
        assert.ok(committedOffset <= lastSent[partitionIndex]!, `cycle ${cycle} partition ${partitionIndex}: ${committedOffset} <= last sent ${lastSent[partitionIndex]}`)
      }
    } finally {
      reader.close()
    }
    t.diagnostic(`offset crash cycle ${cycle + 1}/${CYCLES}: ${acknowledged} commits acknowledged, none lost`)
  }
  assert.ok(lastAcked.every((o) => o > 0n), 'every partition had acknowledged commits')
  t.diagnostic(totalsLine({ cycles: CYCLES, commitsChecked: acknowledged, lost: 0 }))
})
