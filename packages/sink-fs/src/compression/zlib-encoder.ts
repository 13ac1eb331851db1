import { once } from 'node:events';
import { setImmediate as nextIteration } from 'node:timers/promises';
import type * as Zlib from 'node:zlib';
import { nodeZlib } from '../lazy-zlib.js';
import type { OutputSink, StreamEncoder } from './encoder.js';
import { zstdCompressFactory } from './options.js';

type ZlibTransform = Zlib.Gzip;

/**
 * gzip (and zstd where node:zlib has it) through a node:zlib transform, which compresses on the
 * libuv thread pool. The gzip member looks like what `gzdopen(fd, "wb")` writes: a 10-byte header
 * with mtime 0 and OS 3, deflate data, CRC32 and ISIZE. `end()` writes the trailer, so a closed
 * `.gz.partial` is a complete gzip stream whose ISIZE is the number of bytes received.
 */
export class ZlibStreamEncoder implements StreamEncoder {
  private output: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  private constructor(
    private readonly transform: ZlibTransform,
    private readonly syncFlushKind: number,
    sink: OutputSink,
  ) {
    // Output chunks are appended in order through one promise chain; write() and flush() wait for
    // it, so at most the output of one input buffer is in flight.
    transform.on('data', (chunk: Buffer) => {
      const next = this.output.then(() => sink([chunk]));
      next.catch(() => {}); // observed by the next await; never an unhandled rejection
      this.output = next;
    });
    transform.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  static gzip(sink: OutputSink, level: number): ZlibStreamEncoder {
    const zlib = nodeZlib();
    const transform = zlib.createGzip({ level, chunkSize: 64 * 1024 });
    return new ZlibStreamEncoder(transform, zlib.constants.Z_SYNC_FLUSH, sink);
  }

  static zstd(sink: OutputSink, level: number): ZlibStreamEncoder {
    const factory = zstdCompressFactory();
    if (factory === undefined) throw new Error('node:zlib has no zstd support');
    const constants = nodeZlib().constants as unknown as Record<string, number>;
    const levelParameter = constants.ZSTD_c_compressionLevel ?? 100;
    const transform = factory({ params: { [levelParameter]: level }, chunkSize: 64 * 1024 });
    return new ZlibStreamEncoder(transform, constants.ZSTD_e_flush ?? 1, sink);
  }

  async write(data: Buffer): Promise<void> {
    this.throwIfFailed();
    await new Promise<void>((resolve, reject) => {
      this.transform.write(data, (error) => (error ? reject(error) : resolve()));
    });
    await this.drain();
  }

  async flush(): Promise<void> {
    this.throwIfFailed();
    await new Promise<void>((resolve) => this.transform.flush(this.syncFlushKind, () => resolve()));
    await this.drain();
  }

  async end(): Promise<void> {
    this.throwIfFailed();
    const ended = once(this.transform, 'end');
    this.transform.end();
    await ended;
    await this.drain();
  }

  destroy(): void {
    this.transform.destroy();
  }

  /**
   * Waits until every output chunk produced so far has been written. A chunk pushed while the
   * readable side still holds data is emitted on a later tick, so wait for the buffer to empty too.
   */
  private async drain(): Promise<void> {
    for (;;) {
      const pending = this.output;
      await pending;
      if (this.transform.readableLength > 0) {
        await nextIteration();
        continue;
      }
      if (pending === this.output) break;
    }
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
