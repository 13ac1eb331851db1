import { writeInt64, writeUint32 } from '../io/integers.js';
import { expectLength } from '../io/reader.js';
import { ReplicationMessageType } from '../message-codes.js';

/**
 * 'h' hot standby feedback: `[0] 'h', [1..8] sendTime, Int32 xmin, Int32 xmin epoch,
 * Int32 catalog_xmin, Int32 catalog_xmin epoch` (25 bytes). Both xmins 0 = stop holding back.
 */
export interface HotStandbyFeedback {
  sendTime: bigint;
  xmin: number;
  xminEpoch: number;
  catalogXmin: number;
  catalogXminEpoch: number;
}

export const HOT_STANDBY_FEEDBACK_LENGTH = 25;

export function encodeHotStandbyFeedback(feedback: HotStandbyFeedback): Buffer {
  const payload = Buffer.allocUnsafe(HOT_STANDBY_FEEDBACK_LENGTH);
  payload[0] = ReplicationMessageType.HotStandbyFeedback;
  writeInt64(payload, feedback.sendTime, 1, 'sendTime');
  writeUint32(payload, feedback.xmin, 9, 'xmin');
  writeUint32(payload, feedback.xminEpoch, 13, 'xminEpoch');
  writeUint32(payload, feedback.catalogXmin, 17, 'catalogXmin');
  writeUint32(payload, feedback.catalogXminEpoch, 21, 'catalogXminEpoch');
  return payload;
}

export function decodeHotStandbyFeedback(payload: Buffer): HotStandbyFeedback {
  expectLength('HotStandbyFeedback', payload, HOT_STANDBY_FEEDBACK_LENGTH);
  return {
    sendTime: payload.readBigInt64BE(1),
    xmin: payload.readUInt32BE(9),
    xminEpoch: payload.readUInt32BE(13),
    catalogXmin: payload.readUInt32BE(17),
    catalogXminEpoch: payload.readUInt32BE(21),
  };
}
