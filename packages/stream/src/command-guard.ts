import type { ReplicationConnection } from './connection.js';
import { StreamError } from './errors.js';

/**
 * The connection with its commands bounded: a server that stops answering a command (a half-sent
 * reply, a network partition without RST) would otherwise block the loop forever, since libpq-lite
 * commands take no timeout or signal. While a command waits:
 * - `signal` aborting destroys the connection, so the command fails at once and the loop can stop;
 * - `receiveTimeoutMs` passing destroys it too and fails the command with WAL_ERR_STREAM_RECEIVE_TIMEOUT
 *   (retryable), the same verdict as a server silent inside COPY.
 * Inside COPY the copy loop applies both itself; the guard then has nothing pending.
 */
export function guardCommands(
  connection: ReplicationConnection,
  options: { receiveTimeoutMs: number | undefined; signal: AbortSignal | undefined },
): ReplicationConnection {
  const { receiveTimeoutMs, signal } = options;
  if (receiveTimeoutMs === undefined && signal === undefined) return connection;
  const guard = <T>(name: string, work: () => Promise<T>): Promise<T> => {
    if (signal?.aborted) connection.destroy();
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => connection.destroy();
      const settle = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (receiveTimeoutMs !== undefined) {
        timer = setTimeout(() => {
          settle();
          connection.destroy();
          reject(
            new StreamError(
              'WAL_ERR_STREAM_RECEIVE_TIMEOUT',
              `no answer from the server to ${name} within ${receiveTimeoutMs} ms; reconnecting.`,
              { retryable: true },
            ),
          );
        }, receiveTimeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      work().then(
        (value) => {
          settle();
          resolve(value);
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
    });
  };
  const guarded: ReplicationConnection = {
    get serverVersion() {
      return connection.serverVersion;
    },
    get parameters() {
      return connection.parameters;
    },
    identifySystem: () => guard('IDENTIFY_SYSTEM', () => connection.identifySystem()),
    show: (name) => guard(`SHOW ${name}`, () => connection.show(name)),
    timelineHistory: (timeline) => guard('TIMELINE_HISTORY', () => connection.timelineHistory(timeline)),
    readReplicationSlot: (slot) => guard('READ_REPLICATION_SLOT', () => connection.readReplicationSlot(slot)),
    startReplication: (request) => guard('START_REPLICATION', () => connection.startReplication(request)),
    close: () => connection.close(),
    destroy: () => connection.destroy(),
  };
  return guarded;
}
