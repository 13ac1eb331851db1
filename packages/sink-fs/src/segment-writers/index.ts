import type { FileHandle } from 'node:fs/promises';
import type { CompressionSpec } from '../compression/index.js';
import { BlockingWriter } from './blocking-writer.js';
import { CompressedWriter } from './compressed-writer.js';
import type { SegmentWriter } from './segment-writer.js';
import { ThreadPoolWriter } from './thread-pool-writer.js';

export type { Pending, SegmentWriter } from './segment-writer.js';

/** What decides a segment's writer. */
export interface SegmentWriterChoice {
  compression: CompressionSpec;
  /** false = `--no-sync`. */
  sync: boolean;
  blockingWrites: boolean;
}

/**
 * The writer for a segment just opened on `handle`. Blocking writes apply to uncompressed data
 * only: an encoder compresses on the thread pool and hands its output back later, so a compressed
 * write could not finish before it returns anyway.
 */
export function chooseSegmentWriter(handle: FileHandle, choice: SegmentWriterChoice): SegmentWriter {
  const { method, level } = choice.compression;
  if (method !== 'none') return new CompressedWriter(handle, method, level, choice.sync);
  if (choice.blockingWrites) return new BlockingWriter(handle.fd, choice.sync);
  return new ThreadPoolWriter(handle, choice.sync);
}
