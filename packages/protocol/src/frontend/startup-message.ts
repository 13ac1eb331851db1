import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { ProtocolVersion } from '../message-codes.js';

/**
 * The first message of a session (no code byte): `Int32 length, Int32 version, (name\0 value\0)*, \0`.
 * A replication session sends `replication=true` (protocol.sgml "StartupMessage", spec §5.1).
 */
export interface StartupMessage {
  type: 'StartupMessage';
  /** major << 16 | minor: 196608 = 3.0, 196610 = 3.2. */
  protocolVersion: number;
  parameters: Record<string, string>;
}

export function encodeStartupMessage(message: Omit<StartupMessage, 'type'>): Buffer {
  const writer = new MessageWriter(256);
  writer.int32(message.protocolVersion);
  for (const [name, value] of Object.entries(message.parameters)) {
    if (name === '') {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_VALUE',
        'StartupMessage parameter names cannot be empty (an empty name ends the list)',
      );
    }
    writer.cstring(name).cstring(value);
  }
  writer.int8(0);
  return writer.finishUntyped();
}

/** Decodes the body after the version Int32. `payload` is the whole packet after the length. */
export function decodeStartupMessage(payload: Buffer): StartupMessage {
  const reader = new MessageReader(payload, 'StartupMessage');
  const protocolVersion = reader.int32('the protocol version');
  if (protocolVersion >>> 16 !== ProtocolVersion.V3_0 >>> 16) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNSUPPORTED_VERSION',
      `Unsupported frontend protocol ${protocolVersion >>> 16}.${protocolVersion & 0xffff}: ` +
        'only protocol 3.x is supported',
    );
  }
  // Null prototype: a parameter named "__proto__" is a plain key, not a prototype change.
  const parameters = Object.create(null) as Record<string, string>;
  for (;;) {
    const name = reader.cstring('a parameter name');
    if (name === '') break;
    parameters[name] = reader.cstring(`the value of parameter "${name}"`);
  }
  reader.end();
  return { type: 'StartupMessage', protocolVersion, parameters };
}
