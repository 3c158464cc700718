// AlterConfigs (key 33, 0-2) and IncrementalAlterConfigs (key 44, 0-1) on topics. Both compute
// the topic's new explicit settings, validate them as CreateTopics does (INVALID_CONFIG, the
// message naming the key and what it accepts), and unless validate-only, store them durably in
// the catalogue and apply them to the partitions at once. AlterConfigs replaces the explicit
// set as a whole (a key left out returns to its default: Kafka's semantics, which is why admin
// tools moved to the incremental API); IncrementalAlterConfigs sets, deletes, appends to or
// subtracts from the keys named. Broker options are static (flags, environment, config file):
// altering them is refused with a message saying so.
import { ConfigOperation, AlterConfigs, IncrementalAlterConfigs } from '../../protocol/apis/alter-configs.ts'
import { ResourceType } from '../../protocol/apis/describe-configs.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { isTidewayError } from '../../errors.ts'
import { isListConfig, parseTopicConfig, topicConfigDefault } from '../../storage/topic-config.ts'
import { defineHandler, type BrokerServices, type RequestContext } from '../handler.ts'
import { kafkaErrorFor, messageOf } from '../error-mapping.ts'

interface ResourceResult {
  errorCode: number
  errorMessage: string | null
  resourceType: number
  resourceName: string
}

/** What a resource's change turned out to be: the new explicit settings, or why not. */
type Planned = { readonly configs: Record<string, string> } | { readonly errorCode: number; readonly errorMessage: string }

class Refused extends Error {
  readonly errorCode: number
  constructor(errorCode: number, message: string) {
    super(message)
    this.errorCode = errorCode
  }
}

/** IncrementalAlterConfigs' operations applied to a topic's explicit settings (pure). */
export function applyOperations(
  explicit: Readonly<Record<string, string>>,
  operations: readonly { name: string; configOperation: number; value: string | null }[],
): Record<string, string> {
  const next: Record<string, string> = { ...explicit }
  const seen = new Set<string>()
  for (const { name, configOperation, value } of operations) {
    if (seen.has(name)) throw new Refused(ErrorCode.INVALID_REQUEST, `config ${name} appears more than once`)
    seen.add(name)
    switch (configOperation) {
      case ConfigOperation.SET:
        if (value === null) throw new Refused(ErrorCode.INVALID_CONFIG, `${name}: SET needs a value (use DELETE to return to the default)`)
        next[name] = value
        break
      case ConfigOperation.DELETE:
        delete next[name]
        break
      case ConfigOperation.APPEND:
      case ConfigOperation.SUBTRACT: {
        const verb = configOperation === ConfigOperation.APPEND ? 'APPEND' : 'SUBTRACT'
        if (!isListConfig(name)) throw new Refused(ErrorCode.INVALID_CONFIG, `${name} is not a list config: ${verb} applies only to lists (cleanup.policy)`)
        if (value === null) throw new Refused(ErrorCode.INVALID_CONFIG, `${name}: ${verb} needs a value`)
        // Starting from what is in effect, so APPEND to a default extends the default.
        const current = (next[name] ?? topicConfigDefault(name) ?? '').split(',').map((s) => s.trim()).filter(Boolean)
        const items = value.split(',').map((s) => s.trim()).filter(Boolean)
        const result = verb === 'APPEND' ? [...current, ...items.filter((i) => !current.includes(i))] : current.filter((c) => !items.includes(c))
        next[name] = result.join(',')
        break
      }
      default:
        throw new Refused(ErrorCode.INVALID_REQUEST, `${name}: unknown config operation ${configOperation} (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)`)
    }
  }
  return next
}

async function alterResource(
  broker: BrokerServices,
  resource: { resourceType: number; resourceName: string },
  validateOnly: boolean,
  plan: (explicit: Readonly<Record<string, string>>) => Record<string, string>,
  ctx: RequestContext,
): Promise<ResourceResult> {
  const base = { resourceType: resource.resourceType, resourceName: resource.resourceName }
  const outcome = await (async (): Promise<Planned> => {
    if (resource.resourceType === ResourceType.BROKER) {
      return {
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: 'broker options are static: set them with flags, TIDEWAY_* environment variables or the config file, and restart',
      }
    }
    if (resource.resourceType !== ResourceType.TOPIC) {
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unsupported resource type ${resource.resourceType} (2 topic, 4 broker)` }
    }
    const topic = broker.topics.getTopic(resource.resourceName)
    if (!topic) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `unknown topic ${resource.resourceName}` }
    try {
      const configs = plan(topic.explicitConfigs)
      parseTopicConfig(configs)
      return { configs }
    } catch (err) {
      if (err instanceof Refused) return { errorCode: err.errorCode, errorMessage: err.message }
      if (isTidewayError(err, 'TIDEWAY_ERR_CONFIG')) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: err.message }
      throw err
    }
  })()
  if ('errorCode' in outcome) return { ...base, ...outcome }
  if (validateOnly) return { ...base, errorCode: ErrorCode.NONE, errorMessage: null }
  try {
    await broker.topics.setTopicConfig(resource.resourceName, outcome.configs)
  } catch (err) {
    if (isTidewayError(err, 'TIDEWAY_ERR_CONFIG')) return { ...base, errorCode: ErrorCode.INVALID_CONFIG, errorMessage: err.message }
    const errorCode = kafkaErrorFor(err, ctx.logger, { topic: resource.resourceName })
    return { ...base, errorCode, errorMessage: messageOf(err) }
  }
  ctx.logger.info('topic configs altered', { topic: resource.resourceName, configs: outcome.configs })
  return { ...base, errorCode: ErrorCode.NONE, errorMessage: null }
}

export function alterConfigsHandler(broker: BrokerServices) {
  return defineHandler(AlterConfigs, async (req, ctx) => ({
    throttleTimeMs: 0,
    responses: await serially(req.resources, (resource) =>
      alterResource(broker, resource, req.validateOnly, () => {
        const configs: Record<string, string> = {}
        for (const { name, value } of resource.configs) {
          if (Object.hasOwn(configs, name)) throw new Refused(ErrorCode.INVALID_REQUEST, `config ${name} appears more than once`)
          if (value !== null) configs[name] = value
        }
        return configs
      }, ctx),
    ),
  }))
}

export function incrementalAlterConfigsHandler(broker: BrokerServices) {
  return defineHandler(IncrementalAlterConfigs, async (req, ctx) => ({
    throttleTimeMs: 0,
    responses: await serially(req.resources, (resource) =>
      alterResource(broker, resource, req.validateOnly, (explicit) => applyOperations(explicit, resource.configs), ctx),
    ),
  }))
}

/** One resource after another: two changes to one topic in a request apply in order. */
async function serially<T, R>(items: readonly T[], each: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (const item of items) out.push(await each(item))
  return out
}
