// FindCoordinator (key 10), versions 0-4. A single node coordinates every group and every
// transactional id, so the answer is always ourselves, with the same node id, host and port as
// Metadata (clients connect to that address after bootstrap). Key types other than 0 (group)
// and 1 (transaction) get INVALID_REQUEST. v4 answers one coordinator per requested key.
import { FindCoordinator } from '../../protocol/apis/find-coordinator.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

const GROUP_KEY = 0
const TRANSACTION_KEY = 1

export function findCoordinatorHandler(broker: BrokerServices) {
  return defineHandler(FindCoordinator, (req, ctx) => {
    const known = req.keyType === GROUP_KEY || req.keyType === TRANSACTION_KEY
    const answer = known
      ? {
          errorCode: ErrorCode.NONE as number,
          errorMessage: null,
          nodeId: broker.config.nodeId,
          host: broker.advertised.host,
          port: broker.advertised.port,
        }
      : { errorCode: ErrorCode.INVALID_REQUEST as number, errorMessage: `unknown key type ${req.keyType}`, nodeId: -1, host: '', port: -1 }
    if (ctx.apiVersion >= 4) {
      return { throttleTimeMs: 0, coordinators: req.coordinatorKeys.map((key) => ({ key, ...answer })) }
    }
    return { throttleTimeMs: 0, ...answer }
  })
}
