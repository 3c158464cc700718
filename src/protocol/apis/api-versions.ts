// ApiVersions (key 18). Served 0-3; v3 is flexible in the *body* only: the response header is
// always v0 (no tagged fields) so that a client that sent a version we lack can still read our
// answer and retry with a version from the list (KIP-511, ApiVersionsResponse.json).
import { api, array, int16, int32, int64, bool, string, struct } from '../schema.ts'

const ApiVersion = struct({ apiKey: int16, minVersion: int16, maxVersion: int16 })
const SupportedFeatureKey = struct({ name: string, minVersion: int16, maxVersion: int16 })
const FinalizedFeatureKey = struct({ name: string, maxVersionLevel: int16, minVersionLevel: int16 })

export const ApiVersions = api({
  key: 18,
  name: 'ApiVersions',
  versions: [0, 3],
  flexibleFrom: 3,
  request: struct({
    clientSoftwareName: string.since(3).ignorable(),
    clientSoftwareVersion: string.since(3).ignorable(),
  }),
  response: struct({
    errorCode: int16,
    apiKeys: array(ApiVersion),
    throttleTimeMs: int32.since(1).ignorable(),
    supportedFeatures: array(SupportedFeatureKey).since(3).tag(0).ignorable(),
    finalizedFeaturesEpoch: int64.since(3).tag(1).default(-1n).ignorable(),
    finalizedFeatures: array(FinalizedFeatureKey).since(3).tag(2).ignorable(),
    zkMigrationReady: bool.since(3).tag(3).ignorable(),
  }),
})
