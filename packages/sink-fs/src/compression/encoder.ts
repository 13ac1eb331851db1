/**
 * A streaming compressor that writes its output through `OutputSink` (appending to the segment
 * file). The same contract for every method keeps CompressedWriter free of per-method branches.
 */
export interface StreamEncoder {
  /** Compress `data`; output may be held back until it forms a unit (an LZ4 block, a deflate block). */
  write(data: Buffer): Promise<void>;
  /** Push out everything so the file decodes to every byte written so far (Z_SYNC_FLUSH, LZ4F_flush). */
  flush(): Promise<void>;
  /** Write the trailer: afterwards the file is a complete stream (gzclose, LZ4F_compressEnd). */
  end(): Promise<void>;
  /** Drop all state after a failure; no more output. */
  destroy(): void;
}

/** Appends the given buffers, in order, at the end of the compressed file. */
export type OutputSink = (chunks: readonly Buffer[]) => Promise<void>;
