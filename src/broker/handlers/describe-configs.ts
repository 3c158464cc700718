// DescribeConfigs (key 32), versions 0-4. Topics (resource type 2) list every key of the topic
// config table with its effective value, whether it was set on the topic or is the default, its
// type and documentation; the broker (type 4) lists its own options, read-only.
import { ConfigSource, ConfigType, DescribeConfigs, ResourceType } from '../../protocol/apis/describe-configs.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { topicConfigTable } from '../../storage/topic-config.ts'
import { brokerOptions, formatFlush, type FlushPolicy } from '../config.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

interface Synonym {
  name: string
  value: string | null
  source: number
}

/**
 * The broker-wide setting each topic config falls back to in Kafka, named as Kafka names it, so
 * tools that show "where does this value come from" (kafka-configs --all, AKHQ, Conduktor)
 * find the pair they expect. Tideway's broker has no such options: the fallback is the default.
 */
const BROKER_SYNONYMS: Readonly<Record<string, string>> = {
  'cleanup.policy': 'log.cleanup.policy',
  'retention.ms': 'log.retention.ms',
  'retention.bytes': 'log.retention.bytes',
  'segment.bytes': 'log.segment.bytes',
  'segment.ms': 'log.roll.ms',
  'max.message.bytes': 'message.max.bytes',
  'message.timestamp.type': 'log.message.timestamp.type',
  'min.compaction.lag.ms': 'log.cleaner.min.compaction.lag.ms',
  'delete.retention.ms': 'log.cleaner.delete.retention.ms',
}

export interface ConfigEntry {
  name: string
  value: string | null
  readOnly: boolean
  isDefault: boolean
  configSource: number
  isSensitive: boolean
  synonyms: Synonym[]
  configType: number
  documentation: string | null
}

const typeCode = (type: string): number =>
  type === 'long' ? ConfigType.LONG : type === 'int' ? ConfigType.INT : type === 'boolean' ? ConfigType.BOOLEAN : ConfigType.STRING

/** The effective topic configuration, as (name, value, source) rows. */
export function describeTopicConfigs(
  explicit: Readonly<Record<string, string>>,
  keys: readonly string[] | null,
  includeDocumentation: boolean,
  includeSynonyms = false,
): ConfigEntry[] {
  return topicConfigTable
    .filter((spec) => keys === null || keys.includes(spec.name))
    .map((spec) => {
      const set = Object.hasOwn(explicit, spec.name)
      // Most specific first, as Kafka orders them: the topic's own value, then the default.
      const synonyms: Synonym[] = !includeSynonyms
        ? []
        : [
            ...(set ? [{ name: spec.name, value: explicit[spec.name]!, source: ConfigSource.DYNAMIC_TOPIC_CONFIG }] : []),
            { name: BROKER_SYNONYMS[spec.name] ?? spec.name, value: String(spec.default), source: ConfigSource.DEFAULT_CONFIG },
          ]
      return {
        name: spec.name,
        value: set ? explicit[spec.name]! : String(spec.default),
        readOnly: false,
        isDefault: !set,
        configSource: set ? ConfigSource.DYNAMIC_TOPIC_CONFIG : ConfigSource.DEFAULT_CONFIG,
        isSensitive: false,
        synonyms,
        configType: typeCode(spec.type),
        documentation: includeDocumentation ? spec.doc : null,
      }
    })
}

function describeBrokerConfigs(broker: BrokerServices, keys: readonly string[] | null, docs: boolean, withSynonyms: boolean): ConfigEntry[] {
  return Object.entries(brokerOptions)
    .filter(([name]) => keys === null || keys.includes(name))
    .map(([name, spec]) => {
      const value = broker.config[name as keyof typeof brokerOptions]
      const shown = spec.kind === 'flush' ? formatFlush(value as FlushPolicy) : String(value)
      const isDefault = JSON.stringify(value) === JSON.stringify(spec.default)
      const source = isDefault ? ConfigSource.DEFAULT_CONFIG : ConfigSource.STATIC_BROKER_CONFIG
      return {
        name,
        value: shown,
        readOnly: true,
        isDefault,
        configSource: source,
        isSensitive: false,
        synonyms: withSynonyms ? [{ name, value: shown, source }] : [],
        configType: spec.kind === 'int' ? ConfigType.INT : spec.kind === 'bool' ? ConfigType.BOOLEAN : ConfigType.STRING,
        documentation: docs ? spec.doc : null,
      }
    })
}

export function describeConfigsHandler(broker: BrokerServices) {
  return defineHandler(DescribeConfigs, (req) => ({
    throttleTimeMs: 0,
    results: req.resources.map((resource) => {
      const base = { resourceType: resource.resourceType, resourceName: resource.resourceName }
      if (resource.resourceType === ResourceType.TOPIC) {
        const topic = broker.topics.getTopic(resource.resourceName)
        if (!topic) {
          return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'no such topic', configs: [] }
        }
        const configs = describeTopicConfigs(topic.explicitConfigs, resource.configurationKeys, req.includeDocumentation, req.includeSynonyms)
        return { ...base, errorCode: ErrorCode.NONE, errorMessage: null, configs }
      }
      if (resource.resourceType === ResourceType.BROKER) {
        if (resource.resourceName !== '' && resource.resourceName !== String(broker.config.nodeId)) {
          return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unknown broker ${resource.resourceName}`, configs: [] }
        }
        const configs = describeBrokerConfigs(broker, resource.configurationKeys, req.includeDocumentation, req.includeSynonyms)
        return { ...base, errorCode: ErrorCode.NONE, errorMessage: null, configs }
      }
      return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unsupported resource type ${resource.resourceType}`, configs: [] }
    }),
  }))
}
