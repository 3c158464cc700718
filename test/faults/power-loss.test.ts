// Power loss at every point of a broker's life (issue 7; research reliability.md §6.2 C1). A real
// broker runs in this process on a simulated disk (test/helpers/sim-disk.ts) that keeps only what
// was synced, and may keep a random prefix of unsynced appends, tearing a batch. Its workload
// touches every durable structure: appends from pipelined producers (group commit), segment rolls
// and their index files, retention deletes, an idempotent producer (its snapshots at rolls),
// an idempotency-key dedup topic (its window rebuilt from the log), and consumer-group offset
// commits. After every mutating disk operation the test takes the image a power cut would leave
// at that instant; then it starts a fresh broker on each image and checks what it recovered:
//   - the history checker (test/helpers/history.ts), with the disk's operation count as its
//     clock: every produce acknowledged before the cut is there, at its offset, with its bytes
//     (or below the log start, deleted by retention); offsets dense; nothing stored twice,
//     nothing nobody sent (a torn write surfacing as a record), nothing out of order;
//   - every offset commit acknowledged before the cut is there (or a later one);
//   - the idempotent producer's last acknowledged batch, sent again, is recognised and answered
//     with its original offset, and its next sequence is accepted;
//   - an acknowledged idempotency key sent again is answered with its original's offset;
//   - the broker takes new writes.
// CI checks POWER_LOSS_POINTS crash points (default 240); `npm run soak` checks thousands.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startBroker, type RunningBroker } from '../../src/broker/broker.ts'
import { silentLogger } from '../../src/logger.ts'
import { CreateTopics, InitProducerId, ListOffsets, OffsetCommit, OffsetFetch, Produce } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { buildBatch } from '../helpers/batches.ts'
import { partitionRecords, RawClient } from '../helpers/raw-client.ts'
import { assertClean, checkHistory, History, totalsLine, type StoredRecord } from '../helpers/history.ts'
import { SimDisk, type DiskImage } from '../helpers/sim-disk.ts'

/** Summed over every crash point, for `npm run soak`. */
const totals = { recordsChecked: 0 }

const CRASH_POINTS = Number(process.env.POWER_LOSS_POINTS ?? 240)
const SEED = Number(process.env.SEED ?? 4242)
const DATA = '/data'
const PLAIN = 'plain' // 2 partitions, small segments and retention
const KEYED = 'keyed' // 1 partition, idempotency-key dedup
const GROUP = 'power-group'

function random(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 0x100000000
  }
}

interface Acked {
  topic: string
  partition: number
  offset: bigint
  value: string
  /** The disk operation count when the produce was sent (the history checker's clock). */
  sentAt: number
  /** The disk operation count when the acknowledgement arrived: a cut at or after it must keep it. */
  at: number
}

interface IdempotentBatch {
  baseSequence: number
  values: string[]
  offset: bigint
  at: number
}

interface Workload {
  acked: Acked[]
  commits: { offset: bigint; at: number }[]
  idempotent: { producerId: bigint; producerEpoch: number; batches: IdempotentBatch[] }
  keys: { key: string; offset: bigint; at: number }[]
  images: { at: number; kind: string; image: DiskImage }[]
  operations: number
}

async function produce(client: RawClient, topic: string, partition: number, values: string[], options: Parameters<typeof buildBatch>[1] = {}, headers?: Record<string, string>) {
  const { batch } = buildBatch(values.map((value) => ({ value, ...(headers ? { headers } : {}) })), { baseTimestamp: BigInt(Date.now()), ...options })
  const response = await client.request(Produce, 8, { acks: -1, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }] })
  return response.responses[0]!.partitionResponses[0]!
}

/** Namespace changes and truncations, where recovery bugs live: every one is a crash point. */
const RARE_KINDS = new Set(['create', 'rename', 'unlink', 'truncate', 'removeTree', 'mkdir'])

/**
 * Runs the workload for `rounds` rounds; when `stride` is given, takes a crash image after every
 * stride-th operation and after every rare one (at most `maxImages`).
 */
async function runWorkload(rounds: number, stride?: number, maxImages = Infinity): Promise<Workload> {
  const disk = new SimDisk()
  const rand = random(SEED)
  const images: Workload['images'] = []
  if (stride) {
    disk.onOperation = (at, kind) => {
      if (images.length < maxImages && (at % stride === 0 || RARE_KINDS.has(kind))) images.push({ at, kind, image: disk.crashImage(rand) })
    }
  }
  const broker = await startBroker({ port: 0, dataDir: DATA, logger: silentLogger, io: disk, retentionCheckIntervalMs: 20 })
  const client = await RawClient.connect(broker.bootstrap)
  const acked: Acked[] = []
  const commits: Workload['commits'] = []
  const keys: Workload['keys'] = []
  try {
    const created = await client.request(CreateTopics, 7, {
      topics: [
        { name: PLAIN, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'segment.bytes', value: '2048' }, { name: 'retention.bytes', value: '6000' }] },
        { name: KEYED, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'tideway.dedup.enable', value: 'true' }, { name: 'segment.bytes', value: '4096' }] },
      ],
    })
    assert.deepEqual(created.topics.map((t) => t.errorCode), [ErrorCode.NONE, ErrorCode.NONE])
    const init = await client.request(InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
    const idempotent = { producerId: init.producerId, producerEpoch: init.producerEpoch, batches: [] as IdempotentBatch[] }
    let sequence = 0
    let n = 0
    for (let round = 0; round < rounds; round++) {
      // Pipelined plain produces: several requests share one fsync.
      await Promise.all(
        [0, 1, 0, 1].map(async (partition) => {
          const value = `p${n++}-${'x'.repeat(Math.floor(rand() * 300))}`
          const sentAt = disk.operations
          const answer = await produce(client, PLAIN, partition, [value])
          assert.equal(answer.errorCode, ErrorCode.NONE)
          acked.push({ topic: PLAIN, partition, offset: answer.baseOffset, value, sentAt, at: disk.operations })
        }),
      )
      // The idempotent producer, 1-3 records a batch, on partition 0.
      const values = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => `i${n++}`)
      const sentAt = disk.operations
      const answer = await produce(client, PLAIN, 0, values, { producerId: idempotent.producerId, producerEpoch: idempotent.producerEpoch, baseSequence: sequence })
      assert.equal(answer.errorCode, ErrorCode.NONE)
      idempotent.batches.push({ baseSequence: sequence, values, offset: answer.baseOffset, at: disk.operations })
      values.forEach((value, i) => acked.push({ topic: PLAIN, partition: 0, offset: answer.baseOffset + BigInt(i), value, sentAt, at: disk.operations }))
      sequence += values.length
      // A keyed record, sometimes repeating an earlier key.
      const key = rand() < 0.3 && keys.length > 0 ? keys[Math.floor(rand() * keys.length)]!.key : `key-${n++}`
      const keySentAt = disk.operations
      const keyed = await produce(client, KEYED, 0, [`v-${key}`], {}, { 'idempotency-key': key })
      assert.equal(keyed.errorCode, ErrorCode.NONE)
      if (!keys.some((k) => k.key === key)) {
        keys.push({ key, offset: keyed.baseOffset, at: disk.operations })
        acked.push({ topic: KEYED, partition: 0, offset: keyed.baseOffset, value: `v-${key}`, sentAt: keySentAt, at: disk.operations })
      }
      // An admin-style offset commit every few rounds.
      if (round % 3 === 0) {
        const offset = BigInt(round)
        const commit = await client.request(OffsetCommit, 8, {
          groupId: GROUP,
          generationIdOrMemberEpoch: -1,
          memberId: '',
          groupInstanceId: null,
          topics: [{ name: PLAIN, partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }],
        })
        assert.equal(commit.topics[0]!.partitions[0]!.errorCode, ErrorCode.NONE)
        commits.push({ offset, at: disk.operations })
      }
    }
    return { acked, commits, idempotent, keys, images, operations: disk.operations }
  } finally {
    disk.onOperation = undefined
    client.close()
    await broker.close()
  }
}

async function logStart(client: RawClient, topic: string, partition: number): Promise<bigint> {
  const response = await client.request(ListOffsets, 5, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -2n }] }],
  })
  return response.topics[0]!.partitions[0]!.offset
}

async function checkRecovered(point: Workload['images'][number], workload: Workload): Promise<void> {
  const disk = SimDisk.fromImage(point.image)
  let broker: RunningBroker
  try {
    broker = await startBroker({ port: 0, dataDir: DATA, logger: silentLogger, io: disk })
  } catch (err) {
    throw new Error(`cut after operation ${point.at} (${point.kind}): the broker did not start`, { cause: err })
  }
  const client = await RawClient.connect(broker.bootstrap)
  const where = `cut after operation ${point.at} (${point.kind})`
  try {
    const topicsExist = point.at >= workload.acked[0]!.at
    if (!topicsExist) return
    // Every record the workload sent counts as sent (those acknowledged after the cut may or may
    // not have survived); the ones acknowledged before it must be there, at their offsets.
    for (const [topic, partitions] of [[PLAIN, 2], [KEYED, 1]] as const) {
      const history = new History()
      for (const r of workload.acked) {
        if (r.topic !== topic) continue
        history.sends.set(r.value, { producer: 'workload', value: r.value, partition: r.partition, t: r.sentAt })
        if (r.at <= point.at) history.acks.set(r.value, { value: r.value, partition: r.partition, offset: Number(r.offset), t: r.at })
      }
      const stored = new Map<number, StoredRecord[]>()
      const logStarts = new Map<number, number>()
      for (let p = 0; p < partitions; p++) {
        const start = await logStart(client, topic, p)
        logStarts.set(p, Number(start))
        stored.set(p, (await partitionRecords(client, topic, p, start)).map((r) => ({ offset: Number(r.offset), value: r.value?.toString() ?? '' })))
      }
      const report = checkHistory(history, stored, { logStart: logStarts })
      assertClean(report, `${where}, topic ${topic}`)
      totals.recordsChecked += report.recordsChecked
    }
    const starts = new Map([[`${PLAIN}-0`, await logStart(client, PLAIN, 0)]])
    const lastCommit = workload.commits.filter((c) => c.at <= point.at).at(-1)
    if (lastCommit) {
      const fetched = await client.request(OffsetFetch, 8, { groups: [{ groupId: GROUP, topics: [{ name: PLAIN, partitionIndexes: [0] }] }], requireStable: false })
      const committed = fetched.groups[0]!.topics[0]!.partitions[0]!.committedOffset
      assert.ok(committed >= lastCommit.offset, `${where}: the commit of ${lastCommit.offset} acknowledged after operation ${lastCommit.at} is lost (found ${committed})`)
    }
    // The idempotent producer's last acknowledged batch, if the log still holds it, is a retry
    // answered with its original offset. The batch after it was unanswered at the cut (it may
    // or may not have survived): the client sends it again, which must succeed either way, and
    // then goes on.
    const { producerId, producerEpoch, batches } = workload.idempotent
    const lastIndex = batches.findLastIndex((b) => b.at <= point.at)
    const last = batches[lastIndex]
    if (last && last.offset >= starts.get(`${PLAIN}-0`)!) {
      const again = await produce(client, PLAIN, 0, last.values, { producerId, producerEpoch, baseSequence: last.baseSequence })
      assert.deepEqual([again.errorCode, again.baseOffset], [ErrorCode.NONE, last.offset], `${where}: the idempotent producer's last batch sent again is not recognised`)
    }
    const unanswered = batches[lastIndex + 1]
    if (unanswered) {
      const retried = await produce(client, PLAIN, 0, unanswered.values, { producerId, producerEpoch, baseSequence: unanswered.baseSequence })
      assert.equal(retried.errorCode, ErrorCode.NONE, `${where}: the retry of the unanswered batch is refused: ${retried.errorMessage}`)
      const sequence = unanswered.baseSequence + unanswered.values.length
      const next = await produce(client, PLAIN, 0, ['after-recovery'], { producerId, producerEpoch, baseSequence: sequence })
      assert.equal(next.errorCode, ErrorCode.NONE, `${where}: the idempotent producer's next batch (sequence ${sequence}) is refused: ${next.errorMessage}`)
    }
    const key = workload.keys.filter((k) => k.at <= point.at).at(-1)
    if (key) {
      const again = await produce(client, KEYED, 0, [`v-${key.key}`], {}, { 'idempotency-key': key.key })
      assert.deepEqual([again.errorCode, again.baseOffset], [ErrorCode.NONE, key.offset], `${where}: key ${key.key} sent again is stored again`)
    }
    assert.equal((await produce(client, PLAIN, 1, ['new write'])).errorCode, ErrorCode.NONE, `${where}: the recovered broker refuses writes`)
  } finally {
    client.close()
    await broker.close()
  }
}

const ROUNDS = Number(process.env.POWER_LOSS_ROUNDS ?? 60)

test(`power loss at ${CRASH_POINTS} points of a workload: every acknowledged write, commit, producer sequence and key survives`, { timeout: 600_000 }, async (t) => {
  // A first run counts the workload's disk operations; the second takes crash images spread
  // over all of them, plus every namespace change and truncation.
  const { operations } = await runWorkload(ROUNDS)
  const workload = await runWorkload(ROUNDS, Math.max(1, Math.floor(operations / CRASH_POINTS)), CRASH_POINTS * 3)
  const chosen = workload.images
  const kinds = new Map<string, number>()
  for (const point of chosen) {
    kinds.set(point.kind, (kinds.get(point.kind) ?? 0) + 1)
    await checkRecovered(point, workload)
  }
  const ackedRecords = workload.acked.length
  t.diagnostic(
    `${chosen.length} crash points over ${workload.operations} disk operations (${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')}); ` +
      `${ackedRecords} records, ${workload.commits.length} commits, ${workload.idempotent.batches.length} idempotent batches and ${workload.keys.length} keys acknowledged; lost 0, stored twice 0`,
  )
  assert.ok(chosen.length >= Math.min(CRASH_POINTS, 200))
  t.diagnostic(totalsLine({ crashPoints: chosen.length, recordsChecked: totals.recordsChecked, lost: 0, duplicates: 0, reorders: 0 }))
})
