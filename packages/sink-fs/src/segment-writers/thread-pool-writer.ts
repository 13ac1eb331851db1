import type { FileHandle } from 'node:fs/promises';
import { writeFully } from '../file-system.js';
import type { Pending, SegmentWriter } from './segment-writer.js';

/**
 * pwrite and fsync through libuv's thread pool (`FileHandle`), the default for uncompressed
 * segments: a sink inside an application never stalls its event loop on a slow disk. Each call is
 * a thread-pool round trip, which is why SegmentFile coalesces small writes before they get here.
 */
export class ThreadPoolWriter implements SegmentWriter {
  readonly atOnce = false;

  constructor(
    private readonly handle: FileHandle,
    /** false = `--no-sync`. */
    private readonly fsync: boolean,
  ) {}

  write(data: Buffer, position: number): Promise<void> {
    return writeFully(this.handle, data, position);
  }

  sync(): Pending {
    return this.fsync ? this.handle.sync() : undefined;
  }

  async end(): Promise<void> {
    // Uncompressed: the bytes in the file are all there is.
  }

  destroy(): void {
    // No state beyond the file, which SegmentFile closes.
  }
}
