import { ProtocolError } from '../errors.js';
import { expectLength, MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/** Authentication request codes (`protocol.h` AUTH_REQ_*). */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV4: 1,
  KerberosV5: 2,
  CleartextPassword: 3,
  Crypt: 4,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

export interface AuthenticationOk {
  type: 'AuthenticationOk';
}
export interface AuthenticationCleartextPassword {
  type: 'AuthenticationCleartextPassword';
}
export interface AuthenticationMD5Password {
  type: 'AuthenticationMD5Password';
  /** 4 bytes. */
  salt: Buffer;
}
export interface AuthenticationSASL {
  type: 'AuthenticationSASL';
  mechanisms: string[];
}
export interface AuthenticationSASLContinue {
  type: 'AuthenticationSASLContinue';
  data: Buffer;
}
export interface AuthenticationSASLFinal {
  type: 'AuthenticationSASLFinal';
  data: Buffer;
}
/** Any other request (GSS, SSPI, Kerberos, crypt, future codes): the client decides what to say. */
export interface AuthenticationRequest {
  type: 'AuthenticationRequest';
  method: number;
  data: Buffer;
}

export type Authentication =
  | AuthenticationOk
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal
  | AuthenticationRequest;

/** Codes that have their own message type, so an AuthenticationRequest must not use them. */
const DEDICATED_CODES: ReadonlySet<number> = new Set([0, 3, 5, 10, 11, 12]);

/** 'R': `Int32 code` then a code-specific body. */
export function decodeAuthentication(payload: Buffer): Authentication {
  const reader = new MessageReader(payload, 'Authentication request');
  const code = reader.uint32('the authentication code');
  switch (code) {
    case AuthenticationCode.Ok:
      expectLength('AuthenticationOk', payload, 4);
      return { type: 'AuthenticationOk' };
    case AuthenticationCode.CleartextPassword:
      expectLength('AuthenticationCleartextPassword', payload, 4);
      return { type: 'AuthenticationCleartextPassword' };
    case AuthenticationCode.MD5Password:
      expectLength('AuthenticationMD5Password', payload, 8);
      return { type: 'AuthenticationMD5Password', salt: reader.rest() };
    case AuthenticationCode.SASL: {
      const list = new MessageReader(payload.subarray(4), 'AuthenticationSASL');
      const mechanisms: string[] = [];
      for (;;) {
        const mechanism = list.cstring('a mechanism name');
        if (mechanism === '') break;
        mechanisms.push(mechanism);
      }
      list.end();
      return { type: 'AuthenticationSASL', mechanisms };
    }
    case AuthenticationCode.SASLContinue:
      return { type: 'AuthenticationSASLContinue', data: reader.rest() };
    case AuthenticationCode.SASLFinal:
      return { type: 'AuthenticationSASLFinal', data: reader.rest() };
    default:
      return { type: 'AuthenticationRequest', method: code, data: reader.rest() };
  }
}

export function encodeAuthentication(message: Authentication): Buffer {
  const writer = new MessageWriter(32);
  switch (message.type) {
    case 'AuthenticationOk':
      writer.int32(AuthenticationCode.Ok);
      break;
    case 'AuthenticationCleartextPassword':
      writer.int32(AuthenticationCode.CleartextPassword);
      break;
    case 'AuthenticationMD5Password':
      if (message.salt.length !== 4) {
        throw new ProtocolError(
          'WAL_ERR_PROTOCOL_INVALID_VALUE',
          `AuthenticationMD5Password salt must be 4 bytes, got ${message.salt.length}`,
        );
      }
      writer.int32(AuthenticationCode.MD5Password).bytes(message.salt);
      break;
    case 'AuthenticationSASL':
      writer.int32(AuthenticationCode.SASL);
      for (const mechanism of message.mechanisms) {
        if (mechanism === '') {
          throw new ProtocolError(
            'WAL_ERR_PROTOCOL_INVALID_VALUE',
            'AuthenticationSASL mechanism names cannot be empty (an empty name ends the list)',
          );
        }
        writer.cstring(mechanism);
      }
      writer.int8(0);
      break;
    case 'AuthenticationSASLContinue':
      writer.int32(AuthenticationCode.SASLContinue).bytes(message.data);
      break;
    case 'AuthenticationSASLFinal':
      writer.int32(AuthenticationCode.SASLFinal).bytes(message.data);
      break;
    case 'AuthenticationRequest':
      if (DEDICATED_CODES.has(message.method)) {
        throw new ProtocolError(
          'WAL_ERR_PROTOCOL_INVALID_VALUE',
          `AuthenticationRequest cannot use code ${message.method}: that code has its own message type`,
        );
      }
      writer.int32(message.method).bytes(message.data);
      break;
  }
  return writer.finish(BackendMessageCode.Authentication);
}
