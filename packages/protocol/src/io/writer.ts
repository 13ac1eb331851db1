import { ProtocolError } from '../errors.js';

/** Bytes reserved at the start of every message: the code byte and the Int32 length. */
export const MESSAGE_HEADER_LENGTH = 5;

const INITIAL_CAPACITY = 256;
const EMPTY = Buffer.alloc(0);

/**
 * Builds one wire message. The first five bytes are reserved for the code and the length, the body
 * is appended, and `finish(code)` patches the length in, so a message is written once, without a
 * second pass to measure it (the node-postgres `pg-protocol` writer does the same).
 *
 * `finish` hands the buffer to the caller and the writer starts a fresh one for the next message:
 * a finished message is never overwritten (docs/adr/0001-buffer-ownership.md).
 */
export class MessageWriter {
  private buffer: Buffer;
  private length = MESSAGE_HEADER_LENGTH;

  constructor(private readonly initialCapacity = INITIAL_CAPACITY) {
    this.buffer = EMPTY;
  }

  /** Bytes written so far after the reserved header. */
  get bodyLength(): number {
    return this.length - MESSAGE_HEADER_LENGTH;
  }

  private reserve(bytes: number): number {
    const offset = this.length;
    const needed = offset + bytes;
    if (needed > this.buffer.length) {
      let capacity = Math.max(this.buffer.length * 2, this.initialCapacity, MESSAGE_HEADER_LENGTH);
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(capacity);
      this.buffer.copy(grown, 0, 0, offset);
      this.buffer = grown;
    }
    this.length = needed;
    return offset;
  }

  int8(value: number): this {
    checkInteger('Int8', value, -0x80, 0xff);
    const offset = this.reserve(1);
    this.buffer[offset] = value & 0xff;
    return this;
  }

  int16(value: number): this {
    checkInteger('Int16', value, -0x8000, 0xffff);
    const offset = this.reserve(2);
    this.buffer.writeUInt16BE(value & 0xffff, offset);
    return this;
  }

  /** Accepts signed and unsigned 32-bit values (OIDs and xids are unsigned on the wire). */
  int32(value: number): this {
    checkInteger('Int32', value, -0x80000000, 0xffffffff);
    const offset = this.reserve(4);
    this.buffer.writeUInt32BE(value >>> 0, offset);
    return this;
  }

  /** Accepts signed and unsigned 64-bit values (LSNs are unsigned, timestamps signed). */
  int64(value: bigint): this {
    if (value < -0x8000000000000000n || value > 0xffffffffffffffffn) {
      throw new ProtocolError('WAL_ERR_PROTOCOL_INVALID_VALUE', `Int64 value ${value} is out of range`);
    }
    const offset = this.reserve(8);
    this.buffer.writeBigUInt64BE(BigInt.asUintN(64, value), offset);
    return this;
  }

  bytes(value: Uint8Array): this {
    const offset = this.reserve(value.length);
    this.buffer.set(value, offset);
    return this;
  }

  /** A UTF-8 string without terminator (for example a Query's text is a cstring; use `cstring`). */
  string(value: string): this {
    const byteLength = Buffer.byteLength(value, 'utf8');
    const offset = this.reserve(byteLength);
    this.buffer.write(value, offset, byteLength, 'utf8');
    return this;
  }

  /**
   * A NUL-terminated UTF-8 string. A NUL inside the value would silently cut it short on the other
   * side (and could smuggle a second parameter into a StartupMessage), so it is refused.
   */
  cstring(value: string): this {
    if (value.includes('\0')) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_VALUE',
        'A protocol string cannot contain a NUL character; remove it from the value',
      );
    }
    this.string(value);
    this.terminator();
    return this;
  }

  /** NUL-terminated raw bytes (a password is sent as bytes, it need not be valid UTF-8). */
  cstringBytes(value: Uint8Array): this {
    if (value.includes(0)) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_VALUE',
        'A protocol string cannot contain a NUL byte; remove it from the value',
      );
    }
    this.bytes(value);
    this.terminator();
    return this;
  }

  // `this.buffer` must be read after `reserve`, which may replace it.
  private terminator(): void {
    const offset = this.reserve(1);
    this.buffer[offset] = 0;
  }

  /** Completes a message with a code byte: `code, Int32 length (includes itself), body`. */
  finish(code: number): Buffer {
    this.reserve(0);
    const message = this.detach();
    message[0] = code;
    message.writeUInt32BE(message.length - 1, 1);
    return message;
  }

  /** Completes a message without a code byte (StartupMessage, SSLRequest, CancelRequest...). */
  finishUntyped(): Buffer {
    this.reserve(0);
    const message = this.detach().subarray(1);
    message.writeUInt32BE(message.length, 0);
    return message;
  }

  private detach(): Buffer {
    const message = this.buffer.subarray(0, this.length);
    this.buffer = EMPTY;
    this.length = MESSAGE_HEADER_LENGTH;
    return message;
  }
}

function checkInteger(kind: string, value: number, minimum: number, maximum: number): void {
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_INVALID_VALUE', `${kind} value ${value} is out of range`);
  }
}
