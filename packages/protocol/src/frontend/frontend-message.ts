import { type CopyData, decodeCopyData, encodeCopyData } from '../copy/copy-data.js';
import { type CopyDone, decodeCopyDone, encodeCopyDone } from '../copy/copy-done.js';
import { ProtocolError } from '../errors.js';
import { describeCode, FrontendMessageCode } from '../message-codes.js';
import { type CancelRequest, encodeCancelRequest } from './cancel-request.js';
import { type CopyFail, decodeCopyFail, encodeCopyFail } from './copy-fail.js';
import { encodeGSSENCRequest, type GSSENCRequest } from './gssenc-request.js';
import { decodePasswordMessage, encodePasswordMessage, type PasswordMessage } from './password-message.js';
import { decodeQuery, encodeQuery, type Query } from './query.js';
import {
  decodeSASLInitialResponse,
  encodeSASLInitialResponse,
  type SASLInitialResponse,
} from './sasl-initial-response.js';
import { decodeSASLResponse, encodeSASLResponse, type SASLResponse } from './sasl-response.js';
import { encodeSSLRequest, type SSLRequest } from './ssl-request.js';
import { encodeStartupMessage, type StartupMessage } from './startup-message.js';
import { decodeTerminate, encodeTerminate, type Terminate } from './terminate.js';

/** Every message a client sends that this project uses. */
export type FrontendMessage =
  | StartupMessage
  | SSLRequest
  | GSSENCRequest
  | CancelRequest
  | PasswordMessage
  | SASLInitialResponse
  | SASLResponse
  | Query
  | Terminate
  | CopyData
  | CopyDone
  | CopyFail;

/**
 * What a 'p' message means depends on the authentication request it answers, which only the
 * server knows: 'password' (cleartext or MD5), 'sasl-initial' (after AuthenticationSASL) or 'sasl'.
 */
export interface FrontendDecodeContext {
  authentication?: 'password' | 'sasl-initial' | 'sasl';
}

/** Encodes one frontend message as a whole frame. */
export function encodeFrontendMessage(message: FrontendMessage): Buffer {
  switch (message.type) {
    case 'StartupMessage':
      return encodeStartupMessage(message);
    case 'SSLRequest':
      return encodeSSLRequest();
    case 'GSSENCRequest':
      return encodeGSSENCRequest();
    case 'CancelRequest':
      return encodeCancelRequest(message);
    case 'PasswordMessage':
      return encodePasswordMessage(message);
    case 'SASLInitialResponse':
      return encodeSASLInitialResponse(message);
    case 'SASLResponse':
      return encodeSASLResponse(message);
    case 'Query':
      return encodeQuery(message);
    case 'Terminate':
      return encodeTerminate();
    case 'CopyData':
      return encodeCopyData(message);
    case 'CopyDone':
      return encodeCopyDone();
    case 'CopyFail':
      return encodeCopyFail(message);
  }
}

/**
 * Decodes a typed frontend message (everything after the startup packet; for that use
 * `decodeStartupPacket`). Byte fields are views of `payload` (ADR 0001).
 */
export function decodeFrontendMessage(
  code: number,
  payload: Buffer,
  context: FrontendDecodeContext = {},
): FrontendMessage {
  switch (code) {
    case FrontendMessageCode.PasswordMessage:
      switch (context.authentication) {
        case 'password':
          return decodePasswordMessage(payload);
        case 'sasl-initial':
          return decodeSASLInitialResponse(payload);
        case 'sasl':
          return decodeSASLResponse(payload);
        default:
          throw new ProtocolError(
            'WAL_ERR_PROTOCOL_UNEXPECTED_MESSAGE',
            "Unexpected authentication response 'p': no authentication request is outstanding",
          );
      }
    case FrontendMessageCode.Query:
      return decodeQuery(payload);
    case FrontendMessageCode.Terminate:
      return decodeTerminate(payload);
    case FrontendMessageCode.CopyData:
      return decodeCopyData(payload);
    case FrontendMessageCode.CopyDone:
      return decodeCopyDone(payload);
    case FrontendMessageCode.CopyFail:
      return decodeCopyFail(payload);
    default:
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
        `Unexpected frontend message type ${describeCode(code)} (${payload.length} bytes)`,
      );
  }
}
