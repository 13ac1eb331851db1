import type { OnReadOpts } from 'node:net';

/**
 * Size of the buffers a connection reads into. Each socket read fills the unused tail of the
 * current one, so reads are as large as what the kernel has (up to this size) instead of Node's
 * 64 KiB, and consecutive reads lie next to each other in memory.
 */
export const READ_BUFFER_SIZE = 1024 * 1024;

/** When less than this is left of the current buffer, the next read starts a new one. */
export const MIN_READ_SPACE = 128 * 1024;

/**
 * Filled buffers remembered for reuse while the consumer has not released them yet. A consumer
 * that releases keeps this list short (a few MiB are unread or being written at any time); past
 * this many, the oldest is forgotten and left to the garbage collector, so a consumer that stops
 * releasing costs no more than that.
 */
export const MAX_RETIRED_BUFFERS = 16;

/** Released buffers kept for the next reads; more than this many are left to the garbage collector. */
export const MAX_SPARE_BUFFERS = 8;

/**
 * Receives each chunk read. `carried` > 0 when the reader started a new buffer: the chunk then
 * begins with the last `carried` bytes handed out before (the receiver's unfinished message, see
 * `SocketReader.unfinishedLength`), copied unchanged in front of the bytes just read, so that the
 * message lies in one piece of memory. Those bytes replace the receiver's earlier copy of them.
 */
export type ChunkReceiver = (chunk: Buffer, carried: number) => void;

interface RetiredBuffer {
  buffer: Buffer;
  /** Stream offset just past the last byte read into it. */
  end: number;
}

/**
 * Reads a socket through Node's `onread` option (pass `options` to `net.connect`) into large
 * buffers that are filled front to back:
 *
 * - every chunk handed out is a view of bytes just read; the space behind it is used by later
 *   reads, the bytes in it are not written again until the consumer releases them (below), so a
 *   chunk (and every frame view taken of it) stays unchanged for as long as the consumer says it
 *   holds it (docs/adr/0001-buffer-ownership.md);
 * - consecutive chunks continue each other in memory, which `MessageFramer.push` joins, so a
 *   128 kB XLogData message spanning several reads is still a view and is not copied;
 * - a message that would cross from one buffer into the next is not copied into a buffer of its
 *   own: when the reader starts a new buffer, it copies the start of the unfinished message (whose
 *   length the receiver keeps in `unfinishedLength`) to the front of it, reads the rest behind it,
 *   and hands out the two together (`ChunkReceiver`'s `carried`);
 * - one allocation per `READ_BUFFER_SIZE` bytes instead of one per 64 KiB read, and none at all
 *   once the consumer releases what it read: `release(offset)` says every byte before that stream
 *   offset is no longer referenced, and a buffer whose bytes all are is read into again. Without
 *   release calls nothing is ever reused (the garbage collector frees buffers nobody holds), and
 *   fresh memory costs a page fault per 4 KiB on its first write plus a garbage collection to
 *   return, which is why a streaming consumer releases.
 *
 * Stream offsets count bytes in the order they were read (and delivered: chunks that arrive before
 * a `target` is set are kept and handed over in order when it is set). `pause()` and `resume()` on
 * the socket behave as usual (they stop and start the socket reads).
 */
export class SocketReader {
  /** Receives each chunk; set by the SSL negotiation, then by the Wire. */
  private receiver: ChunkReceiver | undefined;
  /**
   * How many of the last bytes handed out the receiver has not used yet (the start of a message
   * still incomplete). A receiver that frames messages (the Wire) keeps it up to date after each
   * chunk, so that the reader can move those bytes in front of the next read instead of the
   * receiver copying the message out when it crosses into a new buffer.
   */
  unfinishedLength = 0;
  /** Bytes copied to the front of `current` that the next chunk handed out starts with. */
  private carried = 0;
  private pending: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  /** Bytes of `current` already filled by reads. */
  private used = 0;
  /** Bytes read so far: the stream offset of the next byte read. */
  private readBytes = 0;
  /** Bytes handed to receivers so far. */
  private handedOut = 0;
  /** Every byte before this stream offset is released. */
  private released = 0;
  /** Set by the first `release()`: only then are filled buffers remembered for reuse. */
  private releasing = false;
  /** Filled buffers in the order they were filled, waiting for their bytes to be released. */
  private retired: RetiredBuffer[] = [];
  private spare: Buffer[] = [];

  readonly options: OnReadOpts = {
    buffer: (): Uint8Array => this.nextSpace(),
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      this.received(bytes, buffer);
      return true;
    },
  };

  set target(receiver: ChunkReceiver | undefined) {
    this.receiver = receiver;
    if (receiver === undefined || this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    for (const chunk of pending) {
      // The receiver may hand over to another one while the backlog is delivered.
      if (this.receiver !== receiver) {
        this.pending.push(chunk);
        continue;
      }
      this.handedOut += chunk.length;
      receiver(chunk, 0);
    }
  }

  /** The stream offset of the next byte a receiver will be given. */
  get deliveredBytes(): number {
    return this.handedOut;
  }

  /**
   * No view of any byte before stream offset `offset` is held any more: buffers holding only such
   * bytes may be read into again. Offsets only move forward; a smaller one changes nothing.
   */
  release(offset: number): void {
    this.releasing = true;
    if (offset > this.released) this.released = Math.min(offset, this.handedOut);
    let index = 0;
    while (index < this.retired.length && this.retired[index]!.end <= this.released) {
      if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(this.retired[index]!.buffer);
      index++;
    }
    if (index > 0) this.retired.splice(0, index);
  }

  private nextSpace(): Buffer {
    if (this.current.length - this.used < MIN_READ_SPACE) {
      if (this.releasing) {
        this.retired.push({ buffer: this.current, end: this.readBytes });
        if (this.retired.length > MAX_RETIRED_BUFFERS) this.retired.shift();
      }
      const previous = this.current;
      const previousUsed = this.used;
      this.current = this.spare.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
      this.used = 0;
      // The unfinished bytes are the last ones handed out, so they end where `previous` is filled;
      // they are copied only when they all lie in it and leave enough room for reads behind them.
      const carry = this.receiver === undefined ? 0 : this.unfinishedLength;
      if (carry > 0 && carry <= previousUsed && carry <= READ_BUFFER_SIZE - MIN_READ_SPACE) {
        previous.copy(this.current, 0, previousUsed - carry, previousUsed);
        this.used = carry;
        this.carried = carry;
      }
    }
    return this.current.subarray(this.used);
  }

  private received(bytes: number, buffer: Uint8Array): void {
    // `buffer` is the space handed out by nextSpace() for this read, so its start is `used`.
    const carried = buffer.buffer === this.current.buffer ? this.carried : 0;
    this.carried = 0;
    const chunk = Buffer.from(buffer.buffer, buffer.byteOffset - carried, carried + bytes);
    if (buffer.buffer === this.current.buffer)
      this.used = buffer.byteOffset - this.current.byteOffset + bytes;
    this.readBytes += bytes;
    if (this.receiver === undefined) {
      this.pending.push(chunk.subarray(carried));
    } else {
      this.handedOut += bytes;
      this.receiver(chunk, carried);
    }
  }
}
