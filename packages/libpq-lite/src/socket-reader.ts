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
 * Reads a socket through Node's `onread` option (pass `options` to `net.connect`) into large
 * buffers that are filled front to back and never written twice:
 *
 * - every chunk handed out is a view of bytes just read; the space behind it is used by later
 *   reads, the bytes in it never again, so a chunk (and every frame view taken of it) stays
 *   unchanged for as long as anyone holds it (docs/adr/0001-buffer-ownership.md);
 * - consecutive chunks continue each other in memory, which `MessageFramer.push` joins, so a
 *   128 kB XLogData message spanning several reads is still a view and is not copied; only a
 *   message that crosses from one buffer into the next is copied once;
 * - one allocation per `READ_BUFFER_SIZE` bytes instead of one per 64 KiB read.
 *
 * Chunks that arrive before a `target` is set are kept and handed over when it is set. `pause()`
 * and `resume()` on the socket behave as usual (they stop and start the socket reads).
 */
export class SocketReader {
  /** Receives each chunk; set by the SSL negotiation, then by the Wire. */
  private receiver: ((chunk: Buffer) => void) | undefined;
  private pending: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  /** Bytes of `current` already filled by reads. */
  private used = 0;

  readonly options: OnReadOpts = {
    buffer: (): Uint8Array => this.nextSpace(),
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      this.received(bytes, buffer);
      return true;
    },
  };

  set target(receiver: ((chunk: Buffer) => void) | undefined) {
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
      receiver(chunk);
    }
  }

  private nextSpace(): Buffer {
    if (this.current.length - this.used < MIN_READ_SPACE) {
      this.current = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
      this.used = 0;
    }
    return this.current.subarray(this.used);
  }

  private received(bytes: number, buffer: Uint8Array): void {
    // `buffer` is the space handed out by nextSpace() for this read, so its start is `used`.
    const chunk = Buffer.from(buffer.buffer, buffer.byteOffset, bytes);
    if (buffer.buffer === this.current.buffer)
      this.used = buffer.byteOffset - this.current.byteOffset + bytes;
    if (this.receiver === undefined) this.pending.push(chunk);
    else this.receiver(chunk);
  }
}
