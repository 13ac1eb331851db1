import { StartupRequestCode } from '../message-codes.js';

/** Asks the server to start TLS before the StartupMessage; the server answers one byte, 'S' or 'N'. */
export interface SSLRequest {
  type: 'SSLRequest';
}

export function encodeSSLRequest(): Buffer {
  const frame = Buffer.allocUnsafe(8);
  frame.writeInt32BE(8, 0);
  frame.writeInt32BE(StartupRequestCode.SSLRequest, 4);
  return frame;
}
