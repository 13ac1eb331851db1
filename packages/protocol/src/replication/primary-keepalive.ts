import { ProtocolError } from '../errors.js';
import { writeInt64, writeUint64 } from '../io/integers.js';
import { expectLength } from '../io/reader.js';
import { ReplicationMessageType } from '../message-codes.js';

/** 'k' primary keepalive: `[0] 'k', [1..8] walEnd, [9..16] sendTime, [17] replyRequested` (18 bytes). */
export interface PrimaryKeepalive {
  type: 'PrimaryKeepalive';
  walEnd: bigint;
  sendTime: bigint;
  /** The server wants a standby status update now (it is waiting, e.g. at shutdown). */
  replyRequested: boolean;
}

export const PRIMARY_KEEPALIVE_LENGTH = 18;

/**
 * Exactly 18 bytes, like the walreceiver (pg_receivewal accepts longer ones, but a longer keepalive
 * means the layout changed and guessing would be worse than stopping).
 */
export function decodePrimaryKeepalive(payload: Buffer): PrimaryKeepalive {
  expectLength('PrimaryKeepalive', payload, PRIMARY_KEEPALIVE_LENGTH);
  const reply = payload[17]!;
  if (reply > 1) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `PrimaryKeepalive replyRequested must be 0 or 1, got ${reply}`,
    );
  }
  return {
    type: 'PrimaryKeepalive',
    walEnd: payload.readBigUInt64BE(1),
    sendTime: payload.readBigInt64BE(9),
    replyRequested: reply === 1,
  };
}

/** The CopyData payload of a keepalive. */
export function encodePrimaryKeepalive(message: Omit<PrimaryKeepalive, 'type'>): Buffer {
  const payload = Buffer.allocUnsafe(PRIMARY_KEEPALIVE_LENGTH);
  payload[0] = ReplicationMessageType.PrimaryKeepalive;
  writeUint64(payload, message.walEnd, 1, 'walEnd');
  writeInt64(payload, message.sendTime, 9, 'sendTime');
  payload[17] = message.replyRequested ? 1 : 0;
  return payload;
}
