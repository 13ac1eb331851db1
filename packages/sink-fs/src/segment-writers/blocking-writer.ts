import { fsyncSync, writeSync } from 'node:fs';
import { noProgressError } from '../file-system.js';
import type { SegmentWriter } from './segment-writer.js';

/**
 * pwrite and fsync on the calling thread, as pg_receivewal does, for a process that does nothing
 * but receive WAL (`blockingWrites`, set by `wal receive`): it saves a thread-pool round trip and
 * two context switches per WAL message (bench/README.md). Every call is done when it returns.
 */
export class BlockingWriter implements SegmentWriter {
  readonly atOnce = true;

  constructor(
    private readonly fd: number,
    /** false = `--no-sync`. */
    private readonly fsync: boolean,
  ) {}

  /** pwrite until every byte is written; a write that makes no progress is ENOSPC, as in PostgreSQL. */
  write(data: Buffer, position: number): undefined {
    let offset = 0;
    while (offset < data.length) {
      const bytesWritten = writeSync(this.fd, data, offset, data.length - offset, position + offset);
      if (bytesWritten <= 0) throw noProgressError();
      offset += bytesWritten;
    }
    return undefined;
  }

  /**
   * The fsync blocks too, like pg_receivewal's: in --synchronous mode the next thing to do is the
   * status update that waits for it anyway.
   */
  sync(): undefined {
    if (this.fsync) fsyncSync(this.fd);
    return undefined;
  }

  async end(): Promise<void> {
    // Uncompressed: the bytes in the file are all there is.
  }

  destroy(): void {
    // No state beyond the file, which SegmentFile closes.
  }
}
