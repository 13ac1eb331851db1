import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { FrontendMessageCode } from '../message-codes.js';

/**
 * 'p' in reply to AuthenticationCleartextPassword or AuthenticationMD5Password: `password\0`.
 * Bytes, not a string: a password need not be valid UTF-8, and a Buffer can be wiped after use.
 */
export interface PasswordMessage {
  type: 'PasswordMessage';
  /** Without the terminating NUL. */
  password: Buffer;
}

export function encodePasswordMessage(message: Omit<PasswordMessage, 'type'>): Buffer {
  return new MessageWriter(message.password.length + 6)
    .cstringBytes(message.password)
    .finish(FrontendMessageCode.PasswordMessage);
}

export function decodePasswordMessage(payload: Buffer): PasswordMessage {
  const reader = new MessageReader(payload, 'PasswordMessage');
  const password = reader.cstringBytes('the password');
  reader.end();
  return { type: 'PasswordMessage', password };
}
