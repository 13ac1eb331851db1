import { StartupRequestCode } from '../message-codes.js';

/** Asks the server to start GSSAPI encryption; the server answers one byte, 'G' or 'N'. */
export interface GSSENCRequest {
  type: 'GSSENCRequest';
}

export function encodeGSSENCRequest(): Buffer {
  const frame = Buffer.allocUnsafe(8);
  frame.writeInt32BE(8, 0);
  frame.writeInt32BE(StartupRequestCode.GSSENCRequest, 4);
  return frame;
}
