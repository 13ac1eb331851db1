import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/**
 * 'v': the server supports an older minor version than asked, or does not know some `_pq_.`
 * startup options. Sent right after the StartupMessage, before authentication.
 */
export interface NegotiateProtocolVersion {
  type: 'NegotiateProtocolVersion';
  /**
   * The newest 3.x minor version the server speaks (0 before PostgreSQL 18). On the wire this is
   * the whole version, `3 << 16 | minor` (servers send `PG_PROTOCOL_LATEST` / `FrontendProtocol`,
   * observed 196608 from PostgreSQL 14), although protocol.sgml calls it "newest minor version".
   */
  newestMinorVersion: number;
  unrecognizedOptions: string[];
}

const PROTOCOL_MAJOR = 3;

export function decodeNegotiateProtocolVersion(payload: Buffer): NegotiateProtocolVersion {
  const reader = new MessageReader(payload, 'NegotiateProtocolVersion');
  const version = reader.int32('the newest protocol version');
  // Tolerate a bare minor number too, in case a third-party server follows the docs' wording.
  const major = version >>> 16;
  const newestMinorVersion = version & 0xffff;
  if (version < 0 || (major !== 0 && major !== PROTOCOL_MAJOR)) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `NegotiateProtocolVersion offers protocol ${major}.${newestMinorVersion}; only 3.x is supported`,
    );
  }
  const count = reader.int32('the option count');
  // Each option name takes at least its NUL byte.
  if (count < 0 || count > reader.remaining) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `NegotiateProtocolVersion is malformed: ${count} options in ${payload.length} bytes`,
    );
  }
  const unrecognizedOptions: string[] = [];
  for (let index = 0; index < count; index++) unrecognizedOptions.push(reader.cstring('an option name'));
  reader.end();
  return { type: 'NegotiateProtocolVersion', newestMinorVersion, unrecognizedOptions };
}

export function encodeNegotiateProtocolVersion(message: Omit<NegotiateProtocolVersion, 'type'>): Buffer {
  const minor = message.newestMinorVersion;
  if (!Number.isInteger(minor) || minor < 0 || minor > 0xffff) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `NegotiateProtocolVersion minor version must be 0 to 65535, got ${minor}`,
    );
  }
  const writer = new MessageWriter(64);
  writer.int32((PROTOCOL_MAJOR << 16) | minor).int32(message.unrecognizedOptions.length);
  for (const option of message.unrecognizedOptions) writer.cstring(option);
  return writer.finish(BackendMessageCode.NegotiateProtocolVersion);
}
