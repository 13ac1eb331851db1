import { ProtocolError } from '../errors.js';
import { describeCode } from '../message-codes.js';

/** One whole message: `code` is the type byte, or 0 for a startup packet (which has none). */
export interface Frame {
  code: number;
  /** The bytes after the length field. See docs/adr/0001-buffer-ownership.md for how long it lives. */
  payload: Buffer;
}

export interface MessageFramerOptions {
  /** Largest accepted payload in bytes (the length field minus 4). Default 64 MiB. */
  maxMessageLength?: number;
  /** The first frame is a startup packet (`Int32 length, body`, no code byte): the server side. */
  expectStartupPacket?: boolean;
}

export const DEFAULT_MAX_MESSAGE_LENGTH = 64 * 1024 * 1024;

/**
 * PostgreSQL's own limit on a startup packet (`MAX_STARTUP_PACKET_LENGTH`, pqcomm.h). A server
 * reads it before authentication, so it must stay small whatever the regular maximum is.
 */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;

const TYPED_HEADER_LENGTH = 5;
const UNTYPED_HEADER_LENGTH = 4;

/**
 * Cuts a byte stream into whole messages, whatever the chunking.
 *
 * Copying: a frame that lies inside one pushed chunk is handed out as a view of that chunk; a frame
 * spread over several chunks is copied once, into a buffer of its exact size, when its last byte
 * arrives. Chunks are only referenced, never concatenated per push.
 *
 * Ownership: the framer never writes into a chunk it was given and never reuses a buffer it handed
 * out, so a payload stays valid as long as the caller holds it (docs/adr/0001-buffer-ownership.md).
 *
 * A framing error (bad or too large length) is sticky: the stream position is lost, so every later
 * `next()` throws the same error.
 */
export class MessageFramer {
  private readonly maxMessageLength: number;
  private chunks: Buffer[] = [];
  /** Index of the first chunk still holding unread bytes. */
  private head = 0;
  /** Read offset inside `chunks[head]`. */
  private headOffset = 0;
  private buffered = 0;
  private startupPending: boolean;
  private failure: ProtocolError | undefined;

  constructor(options: MessageFramerOptions = {}) {
    const maximum = options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH;
    if (!Number.isInteger(maximum) || maximum < 0 || maximum > 0x7fffffff - UNTYPED_HEADER_LENGTH) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_VALUE',
        `maxMessageLength must be an integer between 0 and ${0x7fffffff - UNTYPED_HEADER_LENGTH}, got ${maximum}`,
      );
    }
    this.maxMessageLength = maximum;
    this.startupPending = options.expectStartupPacket ?? false;
  }

  /** Bytes received and not yet handed out as frames. */
  get bufferedLength(): number {
    return this.buffered;
  }

  /**
   * The bytes received and not yet handed out (`bufferedLength` of them) now also lie, unchanged,
   * in `chunk`, which replaces them: a reader that moves the start of an unfinished frame next to
   * the space its remaining bytes will be read into, so the frame stays one view (SocketReader).
   */
  relocateBuffered(chunk: Buffer): void {
    if (chunk.length !== this.buffered) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INTERNAL',
        `MessageFramer.relocateBuffered got ${chunk.length} bytes for ${this.buffered} buffered bytes`,
      );
    }
    this.chunks = chunk.length === 0 ? [] : [chunk];
    this.head = 0;
    this.headOffset = 0;
  }

  /**
   * The next frame is a startup packet. A server calls this after answering an SSLRequest or
   * GSSENCRequest, because the client then sends another startup packet.
   */
  expectStartupPacket(): void {
    this.startupPending = true;
  }

  /**
   * Adds received bytes. The chunk is kept by reference and never modified. A chunk that continues
   * the previous one in memory (the next bytes of the same ArrayBuffer, as a reader that fills one
   * large buffer piece by piece produces) is joined to it, so a frame across the two is still a view.
   */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.buffered += chunk.length;
    const last = this.chunks.length - 1;
    if (last >= this.head) {
      const previous = this.chunks[last]!;
      if (previous.buffer === chunk.buffer && previous.byteOffset + previous.length === chunk.byteOffset) {
        this.chunks[last] = Buffer.from(previous.buffer, previous.byteOffset, previous.length + chunk.length);
        return;
      }
    }
    this.chunks.push(chunk);
  }

  /** The next whole frame, or undefined when more bytes are needed. */
  next(): Frame | undefined {
    if (this.failure !== undefined) throw this.failure;
    const startup = this.startupPending;
    const headerLength = startup ? UNTYPED_HEADER_LENGTH : TYPED_HEADER_LENGTH;
    if (this.buffered < headerLength) return undefined;

    const code = startup ? 0 : this.peekByte(0);
    const lengthOffset = startup ? 0 : 1;
    const lengthField =
      ((this.peekByte(lengthOffset) << 24) |
        (this.peekByte(lengthOffset + 1) << 16) |
        (this.peekByte(lengthOffset + 2) << 8) |
        this.peekByte(lengthOffset + 3)) >>
      0;
    this.checkLength(code, lengthField, startup);

    const payloadLength = lengthField - UNTYPED_HEADER_LENGTH;
    const frameLength = headerLength + payloadLength;
    if (this.buffered < frameLength) return undefined;

    this.skip(headerLength);
    const payload = this.take(payloadLength);
    if (startup) this.startupPending = false;
    return { code, payload };
  }

  private checkLength(code: number, lengthField: number, startup: boolean): void {
    const what = startup ? 'startup packet' : `message ${describeCode(code)}`;
    // A startup packet also holds a 4-byte version or request code, so it needs 8 bytes.
    const minimum = startup ? 8 : UNTYPED_HEADER_LENGTH;
    if (lengthField < minimum) {
      this.failure = new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_FRAME_LENGTH',
        `Invalid length ${lengthField} in ${what}: the length must be at least ${minimum}; ` +
          'the peer does not speak the PostgreSQL protocol or the stream is corrupt',
      );
      throw this.failure;
    }
    const maximum = startup
      ? Math.min(this.maxMessageLength, MAX_STARTUP_PACKET_LENGTH)
      : this.maxMessageLength;
    if (lengthField - UNTYPED_HEADER_LENGTH > maximum) {
      this.failure = new ProtocolError(
        'WAL_ERR_PROTOCOL_FRAME_TOO_LONG',
        `The ${what} has a payload of ${lengthField - UNTYPED_HEADER_LENGTH} bytes, more than the ` +
          `maximum of ${maximum} bytes; the stream is corrupt or the limit is too small`,
      );
      throw this.failure;
    }
  }

  private peekByte(index: number): number {
    let offset = this.headOffset + index;
    for (let chunkIndex = this.head; chunkIndex < this.chunks.length; chunkIndex++) {
      const chunk = this.chunks[chunkIndex]!;
      if (offset < chunk.length) return chunk[offset]!;
      offset -= chunk.length;
    }
    // Unreachable: callers check `buffered` first.
    throw new ProtocolError('WAL_ERR_PROTOCOL_INTERNAL', 'MessageFramer read past its buffered bytes');
  }

  private skip(bytes: number): void {
    let left = bytes;
    while (left > 0) {
      const chunk = this.chunks[this.head]!;
      const available = chunk.length - this.headOffset;
      if (left < available) {
        this.headOffset += left;
        break;
      }
      left -= available;
      this.dropHead();
    }
    this.buffered -= bytes;
  }

  private take(bytes: number): Buffer {
    const first = this.chunks[this.head];
    if (first === undefined || bytes === 0) return Buffer.alloc(0);
    const available = first.length - this.headOffset;
    if (bytes <= available) {
      // The whole frame is inside one chunk: hand out a view, no copy.
      const view = first.subarray(this.headOffset, this.headOffset + bytes);
      this.headOffset += bytes;
      this.buffered -= bytes;
      if (this.headOffset === first.length) this.dropHead();
      return view;
    }
    // Spread over chunks: one copy into a buffer of exactly the frame's size.
    const assembled = Buffer.allocUnsafe(bytes);
    let written = 0;
    while (written < bytes) {
      const chunk = this.chunks[this.head]!;
      const count = Math.min(chunk.length - this.headOffset, bytes - written);
      chunk.copy(assembled, written, this.headOffset, this.headOffset + count);
      written += count;
      this.headOffset += count;
      if (this.headOffset === chunk.length) this.dropHead();
    }
    this.buffered -= bytes;
    return assembled;
  }

  private dropHead(): void {
    // Release the reference so a consumed chunk can be collected once the caller drops its views.
    this.chunks[this.head] = EMPTY;
    this.head++;
    this.headOffset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = Buffer.alloc(0);
