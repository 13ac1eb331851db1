import { ProtocolError } from '../errors.js';
import { expectLength, expectMinimumLength } from '../io/reader.js';
import { StartupRequestCode } from '../message-codes.js';
import { type CancelRequest, decodeCancelRequest } from './cancel-request.js';
import type { GSSENCRequest } from './gssenc-request.js';
import type { SSLRequest } from './ssl-request.js';
import { decodeStartupMessage, type StartupMessage } from './startup-message.js';

export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

/**
 * Decodes a packet that has no code byte, the server's first read (`ProcessStartupPacket`,
 * backend_startup.c). `payload` is everything after the Int32 length. The first Int32 tells a
 * protocol version from a special request code.
 */
export function decodeStartupPacket(payload: Buffer): StartupPacket {
  expectMinimumLength('Startup packet', payload, 4);
  const code = payload.readInt32BE(0);
  switch (code) {
    case StartupRequestCode.SSLRequest:
      expectLength('SSLRequest', payload, 4);
      return { type: 'SSLRequest' };
    case StartupRequestCode.GSSENCRequest:
      expectLength('GSSENCRequest', payload, 4);
      return { type: 'GSSENCRequest' };
    case StartupRequestCode.CancelRequest:
      return decodeCancelRequest(payload);
    default:
      if (code >>> 16 === 1234) {
        throw new ProtocolError(
          'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
          `Unknown startup request code ${code >>> 16}/${code & 0xffff}`,
        );
      }
      return decodeStartupMessage(payload);
  }
}
