import type { ReplicationConnection } from './connection.js';
import { StreamError } from './errors.js';

/** What bounds a wait for the server outside COPY. */
export interface WaitBounds {
  /** Fail the wait with WAL_ERR_STREAM_RECEIVE_TIMEOUT (retryable) after this long. */
  receiveTimeoutMs: number | undefined;
  /** Fail the wait with WAL_ERR_STREAM_ABORTED at once when it aborts. */
  signal: AbortSignal | undefined;
  /**
   * While this returns true the receive timeout does not end the wait (it starts over): a person
   * typing a password at a prompt the connection attempt asked for is not a stalled server.
   */
  isPaused?: (() => boolean) | undefined;
}

/** What a bounded wait is for, in the errors that end it. */
interface WaitDescription {
  /** "while waiting for the server's answer to IDENTIFY_SYSTEM" */
  aborted: string;
  timedOut: (receiveTimeoutMs: number) => string;
}

function commandWait(name: string): WaitDescription {
  return {
    aborted: `stopped while waiting for the server's answer to ${name}`,
    timedOut: (ms) => `no answer from the server to ${name} within ${ms} ms`,
  };
}

const CONNECT_WAIT: WaitDescription = {
  aborted: 'stopped while connecting to the server',
  timedOut: (ms) => `the server did not complete the connection within ${ms} ms`,
};

/**
 * `work` raced against the bounds: whichever ends first settles the promise, and `onInterrupt`
 * (destroying the connection) makes the work itself fail soon after, so nothing stays pending.
 */
function bounded<T>(
  what: WaitDescription,
  bounds: WaitBounds,
  onInterrupt: (error: StreamError) => void,
  work: () => Promise<T>,
): Promise<T> {
  const { receiveTimeoutMs, signal } = bounds;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const interrupt = (error: StreamError): void => {
      if (!settle()) return;
      onInterrupt(error);
      reject(error);
    };
    const onAbort = (): void => interrupt(new StreamError('WAL_ERR_STREAM_ABORTED', what.aborted));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    if (receiveTimeoutMs !== undefined) {
      const onTimeout = (): void => {
        if (bounds.isPaused?.() === true) {
          timer = setTimeout(onTimeout, receiveTimeoutMs);
          return;
        }
        const message = what.timedOut(receiveTimeoutMs);
        interrupt(new StreamError('WAL_ERR_STREAM_RECEIVE_TIMEOUT', message, { retryable: true }));
      };
      timer = setTimeout(onTimeout, receiveTimeoutMs);
    }
    work().then(
      (value) => {
        if (settle()) resolve(value);
      },
      (error: unknown) => {
        if (settle()) reject(error);
      },
    );
  });
}

/**
 * One command on `connection`, bounded: a server that stops answering (a half-sent reply, a
 * network partition without RST, a stopped postmaster) would otherwise block forever. The signal
 * aborting or the receive timeout passing destroys the connection and fails the command at once
 * with WAL_ERR_STREAM_ABORTED or WAL_ERR_STREAM_RECEIVE_TIMEOUT (retryable: the same verdict as a
 * server silent inside COPY). `name` is the command, for the message.
 */
export function boundCommand<T>(
  connection: Pick<ReplicationConnection, 'destroy'>,
  name: string,
  bounds: WaitBounds,
  work: () => Promise<T>,
): Promise<T> {
  if (bounds.receiveTimeoutMs === undefined && bounds.signal === undefined) return work();
  return bounded(commandWait(name), bounds, () => connection.destroy(), work);
}

/**
 * A connection attempt, bounded like a command: `connect` gets a signal that aborts when the bounds
 * end the wait (libpq-lite's `connect` then destroys its sockets); a connection that still arrives
 * after that is destroyed.
 */
export function boundConnect<Connection extends Pick<ReplicationConnection, 'destroy'>>(
  connect: (signal: AbortSignal) => Promise<Connection>,
  bounds: WaitBounds,
): Promise<Connection> {
  const controller = new AbortController();
  let abandoned = false;
  const attempt = connect(controller.signal).then((connection) => {
    if (abandoned) connection.destroy();
    return connection;
  });
  return bounded(
    CONNECT_WAIT,
    bounds,
    (error) => {
      abandoned = true;
      controller.abort(error);
      // The attempt fails or is destroyed on arrival; either way nobody waits for it.
      attempt.catch(() => {});
    },
    () => attempt,
  );
}

/**
 * The connection with each of its commands bounded (`boundCommand`). Inside COPY the copy loop
 * applies both bounds itself; the guard then has nothing pending.
 */
export function guardCommands(connection: ReplicationConnection, bounds: WaitBounds): ReplicationConnection {
  if (bounds.receiveTimeoutMs === undefined && bounds.signal === undefined) return connection;
  const guard = <T>(name: string, work: () => Promise<T>): Promise<T> =>
    boundCommand(connection, name, bounds, work);
  return {
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
}
