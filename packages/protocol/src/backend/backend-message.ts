import { type CopyData, decodeCopyData, encodeCopyData } from '../copy/copy-data.js';
import { type CopyDone, decodeCopyDone, encodeCopyDone } from '../copy/copy-done.js';
import { ProtocolError } from '../errors.js';
import { BackendMessageCode, describeCode } from '../message-codes.js';
import { type Authentication, decodeAuthentication, encodeAuthentication } from './authentication.js';
import { type BackendKeyData, decodeBackendKeyData, encodeBackendKeyData } from './backend-key-data.js';
import { type CommandComplete, decodeCommandComplete, encodeCommandComplete } from './command-complete.js';
import {
  type CopyResponse,
  decodeCopyBothResponse,
  decodeCopyInResponse,
  decodeCopyOutResponse,
  encodeCopyResponse,
} from './copy-response.js';
import { type DataRow, decodeDataRow, encodeDataRow } from './data-row.js';
import {
  decodeEmptyQueryResponse,
  type EmptyQueryResponse,
  encodeEmptyQueryResponse,
} from './empty-query-response.js';
import { decodeErrorResponse, type ErrorResponse, encodeErrorResponse } from './error-response.js';
import {
  decodeNegotiateProtocolVersion,
  encodeNegotiateProtocolVersion,
  type NegotiateProtocolVersion,
} from './negotiate-protocol-version.js';
import { decodeNoticeResponse, encodeNoticeResponse, type NoticeResponse } from './notice-response.js';
import { decodeParameterStatus, encodeParameterStatus, type ParameterStatus } from './parameter-status.js';
import { decodeReadyForQuery, encodeReadyForQuery, type ReadyForQuery } from './ready-for-query.js';
import { decodeRowDescription, encodeRowDescription, type RowDescription } from './row-description.js';

/** Every message a server sends that this project understands. */
export type BackendMessage =
  | Authentication
  | ParameterStatus
  | BackendKeyData
  | ReadyForQuery
  | RowDescription
  | DataRow
  | CommandComplete
  | EmptyQueryResponse
  | ErrorResponse
  | NoticeResponse
  | CopyResponse
  | CopyData
  | CopyDone
  | NegotiateProtocolVersion;

/**
 * Decodes one backend message from its code byte and payload (the bytes after the length).
 * Byte fields are views of `payload` (ADR 0001). Unknown codes and malformed payloads throw
 * `ProtocolError`.
 */
export function decodeBackendMessage(code: number, payload: Buffer): BackendMessage {
  switch (code) {
    case BackendMessageCode.Authentication:
      return decodeAuthentication(payload);
    case BackendMessageCode.ParameterStatus:
      return decodeParameterStatus(payload);
    case BackendMessageCode.BackendKeyData:
      return decodeBackendKeyData(payload);
    case BackendMessageCode.ReadyForQuery:
      return decodeReadyForQuery(payload);
    case BackendMessageCode.RowDescription:
      return decodeRowDescription(payload);
    case BackendMessageCode.DataRow:
      return decodeDataRow(payload);
    case BackendMessageCode.CommandComplete:
      return decodeCommandComplete(payload);
    case BackendMessageCode.EmptyQueryResponse:
      return decodeEmptyQueryResponse(payload);
    case BackendMessageCode.ErrorResponse:
      return decodeErrorResponse(payload);
    case BackendMessageCode.NoticeResponse:
      return decodeNoticeResponse(payload);
    case BackendMessageCode.CopyBothResponse:
      return decodeCopyBothResponse(payload);
    case BackendMessageCode.CopyOutResponse:
      return decodeCopyOutResponse(payload);
    case BackendMessageCode.CopyInResponse:
      return decodeCopyInResponse(payload);
    case BackendMessageCode.CopyData:
      return decodeCopyData(payload);
    case BackendMessageCode.CopyDone:
      return decodeCopyDone(payload);
    case BackendMessageCode.NegotiateProtocolVersion:
      return decodeNegotiateProtocolVersion(payload);
    default:
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
        `Unexpected backend message type ${describeCode(code)} (${payload.length} bytes); ` +
          'the server sent a message this client does not handle',
      );
  }
}

/** Encodes one backend message as a whole frame (code, length, payload): the fake server's side. */
export function encodeBackendMessage(message: BackendMessage): Buffer {
  switch (message.type) {
    case 'AuthenticationOk':
    case 'AuthenticationCleartextPassword':
    case 'AuthenticationMD5Password':
    case 'AuthenticationSASL':
    case 'AuthenticationSASLContinue':
    case 'AuthenticationSASLFinal':
    case 'AuthenticationRequest':
      return encodeAuthentication(message);
    case 'ParameterStatus':
      return encodeParameterStatus(message);
    case 'BackendKeyData':
      return encodeBackendKeyData(message);
    case 'ReadyForQuery':
      return encodeReadyForQuery(message);
    case 'RowDescription':
      return encodeRowDescription(message);
    case 'DataRow':
      return encodeDataRow(message);
    case 'CommandComplete':
      return encodeCommandComplete(message);
    case 'EmptyQueryResponse':
      return encodeEmptyQueryResponse();
    case 'ErrorResponse':
      return encodeErrorResponse(message);
    case 'NoticeResponse':
      return encodeNoticeResponse(message);
    case 'CopyBothResponse':
    case 'CopyOutResponse':
    case 'CopyInResponse':
      return encodeCopyResponse(message);
    case 'CopyData':
      return encodeCopyData(message);
    case 'CopyDone':
      return encodeCopyDone();
    case 'NegotiateProtocolVersion':
      return encodeNegotiateProtocolVersion(message);
  }
}
