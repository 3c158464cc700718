// Looks a topic up before produce or consume use it: its partition count and each partition's
// leader. A missing topic is reported as such at once (the clients would otherwise retry, and
// must never auto-create it: `autocreateTopics` stays off in every CLI client).
import { Admin } from '@platformatic/kafka'
import { clientCall } from './command.ts'
import type { Connection } from './connection.ts'
import { CommandError } from './errors.ts'

export interface TopicLayout {
  readonly topic: string
  /** Leader node id of each partition, indexed by partition. */
  readonly leaders: readonly number[]
}

export async function lookupTopic(connection: Connection, topic: string): Promise<TopicLayout> {
  const admin = new Admin(connection.clientOptions)
  const context = { action: `look up topic "${topic}"`, bootstrap: connection.bootstrap, topic }
  try {
    const names = await clientCall(context, () => admin.listTopics({ includeInternals: true }))
    if (!names.includes(topic)) throw new CommandError(`topic "${topic}" does not exist`)
    const metadata = await clientCall(context, () => admin.metadata({ topics: [topic] }))
    const partitions = metadata.topics.get(topic)?.partitions ?? []
    return { topic, leaders: partitions.map((p) => p.leader) }
  } finally {
    await admin.close().catch(() => {})
  }
}

/** Checks `--partition N` against the topic. */
export function requirePartition(layout: TopicLayout, partition: number): void {
  if (partition >= layout.leaders.length) {
    const count = layout.leaders.length
    throw new CommandError(`topic "${layout.topic}" has ${count} partition${count === 1 ? '' : 's'} (0 to ${count - 1}); there is no partition ${partition}`)
  }
}
