// ApiVersions (key 18), versions 0-3. The list is computed from the handler table, so we never
// advertise an API we cannot serve. (The unsupported-version answer lives in dispatch.ts.)
import { ApiVersions } from '../../protocol/apis/api-versions.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { apiVersionsList } from '../dispatch.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function apiVersionsHandler(broker: BrokerServices) {
  return defineHandler(ApiVersions, () => ({
    errorCode: ErrorCode.NONE,
    apiKeys: apiVersionsList(broker.handlers),
    throttleTimeMs: 0,
  }))
}
