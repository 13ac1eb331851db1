import { ProtocolError } from '../errors.js';
import { describeCode, ReplicationMessageType } from '../message-codes.js';
import { decodeHotStandbyFeedback, type HotStandbyFeedback } from './hot-standby-feedback.js';
import { decodePrimaryKeepalive, type PrimaryKeepalive } from './primary-keepalive.js';
import { decodePrimaryStatusUpdate, type PrimaryStatusUpdate } from './primary-status-update.js';
import { decodeRequestPrimaryStatus, type RequestPrimaryStatus } from './request-primary-status.js';
import { decodeStandbyStatusUpdate, type StandbyStatusUpdate } from './standby-status-update.js';
import { decodeXLogData, type XLogData } from './xlog-data.js';

/** What a server sends inside CopyData during physical replication. */
export type ReplicationMessage = XLogData | PrimaryKeepalive | PrimaryStatusUpdate;

/** What a client sends inside CopyData during physical replication (the fake server decodes these). */
export type StandbyMessage =
  | ({ type: 'StandbyStatusUpdate' } & StandbyStatusUpdate)
  | ({ type: 'HotStandbyFeedback' } & HotStandbyFeedback)
  | ({ type: 'RequestPrimaryStatus' } & RequestPrimaryStatus);

function requireType(direction: string, payload: Buffer): number {
  if (payload.length === 0) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      `${direction} CopyData must be at least 1 byte, got 0`,
    );
  }
  return payload[0]!;
}

/** Decodes a server-to-client CopyData payload. An unknown type byte is a ProtocolError. */
export function decodeReplicationMessage(copyDataPayload: Buffer): ReplicationMessage {
  const type = requireType('A replication', copyDataPayload);
  switch (type) {
    case ReplicationMessageType.XLogData:
      return decodeXLogData(copyDataPayload);
    case ReplicationMessageType.PrimaryKeepalive:
      return decodePrimaryKeepalive(copyDataPayload);
    case ReplicationMessageType.PrimaryStatusUpdate:
      return decodePrimaryStatusUpdate(copyDataPayload);
    default:
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
        `Invalid replication message type ${describeCode(type)} from the server`,
      );
  }
}

/** Decodes a client-to-server CopyData payload during replication. */
export function decodeStandbyMessage(copyDataPayload: Buffer): StandbyMessage {
  const type = requireType('A standby', copyDataPayload);
  switch (type) {
    case ReplicationMessageType.StandbyStatusUpdate:
      return { type: 'StandbyStatusUpdate', ...decodeStandbyStatusUpdate(copyDataPayload) };
    case ReplicationMessageType.HotStandbyFeedback:
      return { type: 'HotStandbyFeedback', ...decodeHotStandbyFeedback(copyDataPayload) };
    case ReplicationMessageType.RequestPrimaryStatus:
      return { type: 'RequestPrimaryStatus', ...decodeRequestPrimaryStatus(copyDataPayload) };
    default:
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
        `Invalid standby message type ${describeCode(type)} from the client`,
      );
  }
}
