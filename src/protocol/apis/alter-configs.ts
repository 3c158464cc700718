// AlterConfigs (key 33, v2 flexible) replaces a resource's whole set of explicit configs: a key
// left out returns to its default. IncrementalAlterConfigs (key 44, v1 flexible) changes only the
// keys named, each with an operation. Both answer one result per resource.
import { api, array, bool, int16, int32, int8, string, struct } from '../schema.ts'

/** IncrementalAlterConfigs operations (KIP-339). */
export const ConfigOperation = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const

const resourceResults = array(
  struct({ errorCode: int16, errorMessage: string.nullable().clipped(), resourceType: int8, resourceName: string }),
)

export const AlterConfigs = api({
  key: 33,
  name: 'AlterConfigs',
  versions: [0, 2],
  flexibleFrom: 2,
  request: struct({
    resources: array(
      struct({
        resourceType: int8,
        resourceName: string,
        configs: array(struct({ name: string, value: string.nullable() })),
      }),
    ),
    validateOnly: bool,
  }),
  response: struct({ throttleTimeMs: int32, responses: resourceResults }),
})

export const IncrementalAlterConfigs = api({
  key: 44,
  name: 'IncrementalAlterConfigs',
  versions: [0, 1],
  flexibleFrom: 1,
  request: struct({
    resources: array(
      struct({
        resourceType: int8,
        resourceName: string,
        configs: array(struct({ name: string, configOperation: int8, value: string.nullable() })),
      }),
    ),
    validateOnly: bool,
  }),
  response: struct({ throttleTimeMs: int32, responses: resourceResults }),
})
