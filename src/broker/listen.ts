// Binding a listener (the Kafka port and the HTTP endpoint) and learning the address it got.
import type { Server } from 'node:net'

/** Listens on host:port (0 picks a free port); rejects when the address cannot be bound. */
export function listenOn(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    server.once('error', onError)
    server.listen({ host, port }, () => {
      server.off('error', onError)
      const address = server.address()
      if (address === null || typeof address === 'string') return reject(new Error('unexpected listen address'))
      resolve({ host: address.address, port: address.port })
    })
  })
}
