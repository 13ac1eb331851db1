import type { Connection } from '@wal/libpq-lite';

/**
 * The part of a libpq-lite Connection the receive loop uses. A real `Connection` satisfies it;
 * tests pass an in-memory fake with the same members.
 */
export type ReplicationConnection = Pick<
  Connection,
  | 'serverVersion'
  | 'parameters'
  | 'identifySystem'
  | 'show'
  | 'timelineHistory'
  | 'readReplicationSlot'
  | 'startReplication'
  | 'close'
  | 'destroy'
>;

export type IdentifySystemResult = Awaited<ReturnType<Connection['identifySystem']>>;
