import type { FileHandle } from 'node:fs/promises';
import { createEncoder, type EncodedMethod, type StreamEncoder } from '../compression/index.js';
import { writevFully } from '../file-system.js';
import type { SegmentWriter } from './segment-writer.js';

/**
 * gzip, lz4 or zstd: WAL goes through the method's stream encoder, whose output is appended to the
 * file through the thread pool (the encoders compress there too). The file grows with the
 * compressed stream; it is never padded.
 */
export class CompressedWriter implements SegmentWriter {
  readonly atOnce = false;
  private readonly encoder: StreamEncoder;
  /** Bytes of compressed output appended so far. */
  private compressedLength = 0;

  constructor(
    private readonly handle: FileHandle,
    method: EncodedMethod,
    level: number,
    /** false = `--no-sync`. */
    private readonly fsync: boolean,
  ) {
    this.encoder = createEncoder(method, level, (chunks) => this.append(chunks));
  }

  write(data: Buffer): Promise<void> {
    return this.encoder.write(data);
  }

  async sync(): Promise<void> {
    await this.encoder.flush();
    if (this.fsync) await this.handle.sync();
  }

  end(): Promise<void> {
    return this.encoder.end();
  }

  destroy(): void {
    this.encoder.destroy();
  }

  private async append(chunks: readonly Buffer[]): Promise<void> {
    this.compressedLength += await writevFully(this.handle, chunks, this.compressedLength);
  }
}
