/**
 * How the bytes of one segment reach its file, chosen once when the segment opens, like the method
 * table of PostgreSQL's `walmethods.c`: SegmentFile keeps one path for write, sync and close (the
 * staging of small writes, positions, error messages) and calls the writer, so no step asks again
 * what kind of segment it is. Writers report failures as the raw Node.js error; SegmentFile names
 * the file and the step.
 */
export interface SegmentWriter {
  /**
   * True when `write` and `sync` always finish before they return (and return undefined), so a
   * caller may do them at once, without a promise (WalSink.writeAtOnce / flushAtOnce).
   */
  readonly atOnce: boolean;
  /**
   * Writes `data` at uncompressed offset `position` (an encoder appends instead): to the page
   * cache, not fsynced.
   */
  write(data: Buffer, position: number): Pending;
  /**
   * Makes every byte written so far durable (`dir_sync`): a compressed stream is sync-flushed so the
   * file decodes to all of them; the fsync is skipped with `sync: false` (`--no-sync`).
   */
  sync(): Pending;
  /** Completes the file's content before it is closed (a compressed stream's trailer). */
  end(): Promise<void>;
  /** Drops all state after a failure; nothing more is written. */
  destroy(): void;
}

/**
 * undefined: the step is done; a promise: it is done when that resolves. A step that finished
 * costs no promise, which matters for the blocking writer: it is called once per WAL message.
 */
export type Pending = Promise<void> | undefined;
