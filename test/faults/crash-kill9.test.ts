// kill -9 of the broker process under mixed load, in a loop. Each cycle: a plain producer that
// never retries (4 concurrent senders, one record per send) and an idempotent producer that
// retries through the crash (batches of 10) write to 3 partitions, while a consumer group of two
// KafkaJS member processes reads and commits, all the time; at a random moment the broker is
// killed and restarted on the same data. After every restart the history checker
// (test/helpers/history.ts) compares what the producers were told and what the consumers read
// with what an independent client (kcat) reads back: nothing acknowledged lost, nothing stored
// twice, nothing out of real-time order, no offset skipped or reused, nothing a consumer read
// gone, and every commit the broker acknowledged before the kill still there. At the end the
// group must have consumed everything stored, with the group checks clean.
// While the broker restarts every few seconds the group may stall: when KafkaJS restarts a
// consumer under a new member id, the old id stays in the group until its session times out,
// and a restarted coordinator gives every member it knows a full session timeout again (as
// Kafka does when it loads a group), so a rebalance waits for a member that is gone until the
// kills stop. The members are not required to keep up during the kills, only to catch up after.
// Every CRASH_ROTATE_EVERY cycles (25) the load moves to a fresh topic, group and members, after
// the old group has caught up and passed its checks, so a soak of hundreds of cycles checks each
// restart against a bounded history while the broker keeps recovering all the data written so far.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { historyOf, MemberProcess } from '../helpers/group-member-process.ts'
import { assertClean, checkHistory, describeReport, History, totalsLine, type StoredRecord } from '../helpers/history.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
const CYCLES = Number(process.env.CRASH_CYCLES ?? 6)
const ROTATE_EVERY = Number(process.env.CRASH_ROTATE_EVERY ?? 25)
const PARTITIONS = 3
const PLAIN_SENDERS = 4
const IDEMPOTENT_BATCH = 10
const MEMBER_SCRIPT = fileURLToPath(new URL('../integration/clients/kafkajs_group_member.ts', import.meta.url))
const dir = tempDir('tideway-crash-')
const broker = new BrokerProcess(dir.path)
const members: MemberProcess[] = []

before(async () => {
  requireKcat()
  await broker.start()
})
after(async () => {
  for (const m of members) m.kill9()
  await broker.kill9()
  dir.remove()
})

/** One topic and the consumer group reading it, for a run of consecutive cycles. */
interface Round {
  readonly topic: string
  readonly groupId: string
  readonly history: History
  readonly members: MemberProcess[]
  live: MemberProcess[]
  replaced: number
}

async function readStored(topic: string): Promise<Map<number, StoredRecord[]>> {
  const stored = new Map<number, StoredRecord[]>()
  for (let p = 0; p < PARTITIONS; p++) stored.set(p, await kcatReadPartition(broker.bootstrap, topic, p))
  return stored
}

/** The group's committed offsets as the broker holds them now. */
async function committedOffsets(round: Round): Promise<Map<number, number>> {
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100 } }).admin()
  await admin.connect()
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: round.groupId, topics: [round.topic] })
    return new Map(offsets!.partitions.map((p) => [p.partition, Number(p.offset)]))
  } finally {
    await admin.disconnect()
  }
}

/** The highest commit each partition had acknowledged by time `t`. */
function acknowledgedCommits(round: Round, t: number): Map<number, number> {
  const best = new Map<number, number>()
  for (const c of round.members.flatMap((m) => m.commits)) {
    if (c.t < t && c.offset > (best.get(c.partition) ?? -1)) best.set(c.partition, c.offset)
  }
  return best
}

test(`kill -9 under produce, consume and commit load, ${CYCLES} cycles: the history checker finds nothing lost, duplicated or reordered`, { timeout: 120_000 + CYCLES * 20_000 }, async (t) => {
  let seed = Number(process.env.SEED ?? 7)
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const totals = { recordsChecked: 0, lost: 0, duplicates: 0, reorders: 0 }

  const startMember = (round: Round, cycles: number) => {
    const lifetimeMs = 120_000 + cycles * 8_000
    const name = `m${members.length + 1}`
    const member = new MemberProcess(name, process.execPath, [MEMBER_SCRIPT, broker.bootstrap, round.topic, round.groupId, '--session-timeout-ms', '10000', '--lifetime-ms', String(lifetimeMs)], lifetimeMs)
    members.push(member)
    round.members.push(member)
    return member
  }
  /** A member whose KafkaJS consumer gave up for good has exited: start another, as a supervisor would. */
  const replaceDeadMembers = (round: Round, cycles: number) => {
    for (const dead of round.live.filter((m) => !m.alive)) {
      const crash = dead.other.filter((e) => e.event === 'crashed').at(-1)
      t.diagnostic(`member ${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}${crash ? `: ${String(crash.error)}` : ''}); starting another`)
      round.replaced++
    }
    round.live = [...round.live.filter((m) => m.alive), ...round.live.filter((m) => !m.alive).map(() => startMember(round, cycles))]
  }

  for (let first = 0; first < CYCLES; first += ROTATE_EVERY) {
    const cycles = Math.min(ROTATE_EVERY, CYCLES - first)
    const round: Round = { topic: uniqueName('crash'), groupId: uniqueName('crash-group'), history: new History(), members: [], live: [], replaced: 0 }
    await createTopic(broker.bootstrap, round.topic, PARTITIONS)
    round.live = [startMember(round, cycles), startMember(round, cycles)]
    for (let cycle = first; cycle < first + cycles; cycle++) totals.recordsChecked += await killOnce(round, cycle, cycles)
    const report = await catchUp(round, cycles)
    totals.recordsChecked += report.recordsChecked
    totals.lost += report.lost.length
    totals.duplicates += report.duplicates
    totals.reorders += report.reorders.length
    for (const m of round.members) m.kill9()
  }
  t.diagnostic(totalsLine({ cycles: CYCLES, ...totals }))

  /** One cycle on `round`: load, a kill -9 at a random moment, a restart, and the checks. Returns the records checked. */
  async function killOnce(round: Round, cycle: number, cycles: number): Promise<number> {
    const { topic, history } = round
    const kafka = (clientId: string, retries: number) =>
      new Kafka({ brokers: [broker.bootstrap], clientId, logLevel: logLevel.NOTHING, retry: { retries, initialRetryTime: 50, maxRetryTime: 500 }, connectionTimeout: 3000, requestTimeout: 10000 })
    const plain = kafka(`plain-${cycle}`, 0).producer({ retry: { retries: 0 }, allowAutoTopicCreation: false })
    const idempotent = kafka(`idempotent-${cycle}`, 40).producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
    await Promise.all([plain.connect(), idempotent.connect()])
    let running = true
    const plainSenders = Array.from({ length: PLAIN_SENDERS }, async (_, s) => {
      for (let n = 0; running; n++) {
        const value = `c${cycle}-plain${s}-${n}`
        const partition = (s + n) % PARTITIONS
        const ok = await history.produce(`plain-${cycle}`, value, partition, async () => {
          const [meta] = await plain.send({ topic, acks: -1, timeout: 5000, messages: [{ value, partition }] })
          return Number(meta!.baseOffset)
        })
        if (!ok && running) await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })
    const idempotentSender = (async () => {
      for (let n = 0; running; n++) {
        const partition = n % PARTITIONS
        const values = Array.from({ length: IDEMPOTENT_BATCH }, (_, i) => `c${cycle}-idem-${n}-${i}`)
        for (const value of values) history.sent(`idempotent-${cycle}`, value, partition)
        try {
          const [meta] = await idempotent.send({ topic, acks: -1, messages: values.map((value) => ({ value, partition })) })
          values.forEach((value, i) => history.acked(value, partition, Number(meta!.baseOffset) + i))
        } catch (err) {
          for (const value of values) history.failed(value, err)
          return // an idempotent producer that gave up may not be reused for later sequences
        }
      }
    })()

    await new Promise((resolve) => setTimeout(resolve, 400 + Math.floor(random() * 1200)))
    const killedAt = Date.now()
    await broker.kill9()
    running = false
    await broker.start()
    await Promise.all([...plainSenders, idempotentSender])
    await Promise.all([plain.disconnect().catch(() => {}), idempotent.disconnect().catch(() => {})])

    // Check after every restart.
    replaceDeadMembers(round, cycles)
    const stored = await readStored(topic)
    history.observed(round.members.flatMap((m) => m.records), round.members.flatMap((m) => m.commits))
    const report = checkHistory(history, stored)
    t.diagnostic(`cycle ${cycle + 1}/${CYCLES} on ${topic}: ${describeReport(report)}; members ${round.live.map((m) => `${m.name} read ${m.records.length} in ${m.assigned.length} assignments`).join(', ')}`)
    assertClean(report, `cycle ${cycle + 1}`)
    const committed = await committedOffsets(round)
    for (const [partition, offset] of acknowledgedCommits(round, killedAt)) {
      assert.ok((committed.get(partition) ?? -1) >= offset, `cycle ${cycle + 1}: partition ${partition} commit ${offset} acknowledged before the kill, broker holds ${committed.get(partition)}`)
    }
    return report.recordsChecked
  }

  /** The round's group reads everything stored in its topic, and its own history is clean. */
  async function catchUp(round: Round, cycles: number) {
    const stored = await readStored(round.topic)
    const storedValues = [...stored.values()].flatMap((records) => records.map((r) => r.value))
    await waitFor(() => {
      replaceDeadMembers(round, cycles)
      const seen = new Set(round.members.flatMap((m) => m.records.map((r) => r.value)))
      return storedValues.every((v) => seen.has(v))
    }, { timeoutMs: 60_000 + storedValues.length / 5, intervalMs: 500, what: `the group to consume all ${storedValues.length} stored records of ${round.topic}` })
    const group = historyOf(round.members)
    round.history.observed(group.records, group.commits)
    const report = checkHistory(round.history, stored, { group })
    const restarts = round.members.reduce((n, m) => n + m.other.filter((e) => e.event === 'crashed').length, 0)
    t.diagnostic(`${round.topic} after ${cycles} cycles: ${describeReport(report)}; KafkaJS restarted a consumer ${restarts} time(s), ${round.replaced} member(s) replaced after it gave up on them`)
    assertClean(report, `${round.topic}, final`)
    assert.ok(report.acknowledged > cycles * 50, `enough acknowledged records to mean something (${report.acknowledged})`)
    assert.ok(report.failed > 0, 'some sends were cut off by a kill')
    return report
  }
})
