// DescribeConfigs (key 32). Served 0-4 (v4 flexible). Resource type 2 is a topic, 4 a broker.
// Each config carries its source (ConfigSource) and, from v3, its type and documentation.
import { api, array, bool, int16, int32, int8, string, struct } from '../schema.ts'

export const ResourceType = { TOPIC: 2, BROKER: 4 } as const
/** Where a config value comes from (DescribeConfigsResponse.json, "ConfigSource"). */
export const ConfigSource = { UNKNOWN: 0, DYNAMIC_TOPIC_CONFIG: 1, STATIC_BROKER_CONFIG: 4, DEFAULT_CONFIG: 5 } as const
/** Config value types shown from v3 (KIP-569). */
export const ConfigType = { UNKNOWN: 0, BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6, LIST: 7 } as const

const Synonym = struct({ name: string, value: string.nullable(), source: int8 })

export const DescribeConfigs = api({
  key: 32,
  name: 'DescribeConfigs',
  versions: [0, 4],
  flexibleFrom: 4,
  request: struct({
    resources: array(
      struct({ resourceType: int8, resourceName: string, configurationKeys: array(string).nullable() }),
    ),
    includeSynonyms: bool.since(1).default(false),
    includeDocumentation: bool.since(3).default(false),
  }),
  response: struct({
    throttleTimeMs: int32,
    results: array(
      struct({
        errorCode: int16,
        errorMessage: string.nullable().clipped(),
        resourceType: int8,
        resourceName: string,
        configs: array(
          struct({
            name: string,
            value: string.nullable(),
            readOnly: bool,
            isDefault: bool.until(0).ignorable(),
            configSource: int8.since(1).default(-1).ignorable(),
            isSensitive: bool,
            synonyms: array(Synonym).since(1).ignorable(),
            configType: int8.since(3).default(0).ignorable(),
            // Absent before v3: decodes as "", Kafka's implied default for a string.
            documentation: string.since(3).nullable().ignorable(),
          }),
        ),
      }),
    ),
  }),
})
