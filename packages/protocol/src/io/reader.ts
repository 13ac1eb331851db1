import { ProtocolError } from '../errors.js';

/**
 * Reads the fields of one message payload, checking every read against the payload's end so a
 * short or lying message becomes a `ProtocolError` naming the message, never a RangeError or a read
 * of a neighbouring message's bytes. Byte fields are returned as views (`subarray`), not copies:
 * they stay valid as long as the payload does (docs/adr/0001-buffer-ownership.md).
 */
export class MessageReader {
  private offset = 0;

  constructor(
    private readonly payload: Buffer,
    /** The message name used in error messages, e.g. 'ErrorResponse'. */
    readonly messageName: string,
  ) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.payload.length - this.offset;
  }

  private take(bytes: number, field: string): number {
    if (this.payload.length - this.offset < bytes) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
        `${this.messageName} is truncated: ${field} needs ${bytes} bytes at offset ${this.offset}, ` +
          `but the payload has ${this.payload.length} bytes`,
      );
    }
    const offset = this.offset;
    this.offset += bytes;
    return offset;
  }

  uint8(field = 'Byte1'): number {
    return this.payload[this.take(1, field)]!;
  }

  int16(field = 'Int16'): number {
    return this.payload.readInt16BE(this.take(2, field));
  }

  uint16(field = 'Int16'): number {
    return this.payload.readUInt16BE(this.take(2, field));
  }

  int32(field = 'Int32'): number {
    return this.payload.readInt32BE(this.take(4, field));
  }

  uint32(field = 'Int32'): number {
    return this.payload.readUInt32BE(this.take(4, field));
  }

  int64(field = 'Int64'): bigint {
    return this.payload.readBigInt64BE(this.take(8, field));
  }

  uint64(field = 'Int64'): bigint {
    return this.payload.readBigUInt64BE(this.take(8, field));
  }

  /** A view of the next `length` bytes. */
  bytes(length: number, field = 'Byte n'): Buffer {
    if (!Number.isInteger(length) || length < 0) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_FIELD',
        `${this.messageName} has an invalid length ${length} for ${field}`,
      );
    }
    const offset = this.take(length, field);
    return this.payload.subarray(offset, offset + length);
  }

  /** A view of everything not read yet. */
  rest(): Buffer {
    const offset = this.offset;
    this.offset = this.payload.length;
    return this.payload.subarray(offset);
  }

  /** The bytes of a NUL-terminated string, without the NUL, as a view. */
  cstringBytes(field = 'String'): Buffer {
    const end = this.payload.indexOf(0, this.offset);
    if (end === -1) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
        `${this.messageName} is malformed: ${field} at offset ${this.offset} has no terminating NUL byte`,
      );
    }
    const value = this.payload.subarray(this.offset, end);
    this.offset = end + 1;
    return value;
  }

  /** A NUL-terminated string decoded as UTF-8 (the project always sets client_encoding to UTF8). */
  cstring(field = 'String'): string {
    return this.cstringBytes(field).toString('utf8');
  }

  /** Fails unless every byte was consumed: trailing bytes mean the peer and we disagree on layout. */
  end(): void {
    if (this.offset !== this.payload.length) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
        `${this.messageName} has ${this.payload.length - this.offset} unexpected trailing bytes ` +
          `(expected ${this.offset} bytes, got ${this.payload.length})`,
      );
    }
  }
}

/** Fails unless a fixed-size message has exactly `expected` bytes. */
export function expectLength(messageName: string, payload: Buffer, expected: number): void {
  if (payload.length !== expected) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      `${messageName} must be ${expected} bytes, got ${payload.length}`,
    );
  }
}

/** Fails unless a message has at least `minimum` bytes. */
export function expectMinimumLength(messageName: string, payload: Buffer, minimum: number): void {
  if (payload.length < minimum) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      `${messageName} must be at least ${minimum} bytes, got ${payload.length}`,
    );
  }
}
