import { createReadStream } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type ParsedWalFileName, parseWalFileName, segmentStartLsn } from '@wal/protocol';
import { countLz4Frames } from './compression/lz4-frame.js';
import { zstdDecompressFactory } from './compression/options.js';
import { errnoCode, fileSystemError, SinkError } from './errors.js';

export interface ScanOptions {
  /** Receives pg_receivewal's warnings, e.g. `segment file "X" has incorrect size 42, skipping`. */
  onWarning?: (message: string) => void;
  /**
   * Check every complete file, as pg_receivewal does (it decompresses every `.lz4` file in full on
   * each start). By default files are checked newest first and the scan stops at the first one that
   * passes: the winner is the same, only warnings about older bad files are not given.
   */
  checkAllFiles?: boolean;
}

/** A segment file name the scan recognised. */
export interface StoredSegment extends ParsedWalFileName {
  name: string;
}

export interface ScanResult {
  /** The file resuming is based on: highest segment, then timeline, then complete over partial. */
  newest: StoredSegment | undefined;
  /**
   * Where to resume (`FindStreamingStart`): the start of the segment after a complete newest file,
   * or the start of a partial newest file's segment; undefined when nothing usable is stored.
   */
  resumePoint: { lsn: bigint; timeline: number } | undefined;
}

/**
 * pg_receivewal's directory scan (spec §2.2, `FindStreamingStart`): which names count, the size
 * checks of complete files (uncompressed size, gzip ISIZE trailer, LZ4 decoded length), and the
 * choice of the newest file. Our own `.zst` files are recognised as well. Segment number 0 is never
 * chosen, as in pg_receivewal.
 */
export async function scanDirectory(
  directory: string,
  segmentSize: number,
  options: ScanOptions = {},
): Promise<ScanResult> {
  const candidates = await listSegments(directory, segmentSize);
  let newest: StoredSegment | undefined;
  for (const segment of candidates) {
    if (newest !== undefined && !options.checkAllFiles) break;
    const usable = segment.partial || (await checkCompleteSegment(directory, segment, segmentSize, options));
    if (usable && newest === undefined) newest = segment;
  }
  if (newest === undefined) return { newest, resumePoint: undefined };
  const segmentNumber = newest.partial ? newest.segmentNumber : newest.segmentNumber + 1n;
  return {
    newest,
    resumePoint: { lsn: segmentStartLsn(segmentNumber, segmentSize), timeline: newest.timeline },
  };
}

/** Every segment name in the directory (segment number above 0), newest first by the scan's order. */
export async function listSegments(directory: string, segmentSize: number): Promise<StoredSegment[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    throw fileSystemError(error, `could not read directory "${directory}"`, directory);
  }
  const segments: StoredSegment[] = [];
  for (const name of names) {
    const parsed = parseWalFileName(name, segmentSize);
    if (parsed === undefined || parsed.segmentNumber === 0n) continue;
    segments.push({ name, ...parsed });
  }
  return segments.sort(compareNewestFirst);
}

function compareNewestFirst(left: StoredSegment, right: StoredSegment): number {
  if (left.segmentNumber !== right.segmentNumber) return left.segmentNumber > right.segmentNumber ? -1 : 1;
  if (left.timeline !== right.timeline) return right.timeline - left.timeline;
  if (left.partial !== right.partial) return left.partial ? 1 : -1;
  return left.name < right.name ? -1 : left.name > right.name ? 1 : 0;
}

/** The size checks of complete files; false (with a warning) when the file is to be skipped. */
async function checkCompleteSegment(
  directory: string,
  segment: StoredSegment,
  segmentSize: number,
  options: ScanOptions,
): Promise<boolean> {
  const path = join(directory, segment.name);
  const warn = options.onWarning ?? (() => {});
  try {
    switch (segment.compression) {
      case 'none': {
        const size = (await stat(path)).size;
        if (size === segmentSize) return true;
        warn(`segment file "${segment.name}" has incorrect size ${size}, skipping`);
        return false;
      }
      case 'gzip': {
        const size = await readGzipTrailerSize(path, segment.name, directory);
        if (size === segmentSize) return true;
        warn(`compressed segment file "${segment.name}" has incorrect uncompressed size ${size}, skipping`);
        return false;
      }
      case 'lz4': {
        const size = await countLz4File(path, segment.name, segmentSize, directory);
        if (size === segmentSize) return true;
        warn(`compressed segment file "${segment.name}" has incorrect uncompressed size ${size}, skipping`);
        return false;
      }
      case 'zstd': {
        const size = await countZstdFile(path, segment.name, segmentSize);
        if (size === segmentSize) return true;
        warn(`compressed segment file "${segment.name}" has incorrect uncompressed size ${size}, skipping`);
        return false;
      }
    }
  } catch (error) {
    // Removed between readdir and the check (an archive cleanup): no longer a candidate.
    if (errnoCode(error) === 'ENOENT') return false;
    if (error instanceof SinkError) throw error;
    throw fileSystemError(error, `could not check segment file "${segment.name}"`, directory);
  }
}

/** The gzip ISIZE trailer: the last 4 bytes, little-endian, the uncompressed size modulo 2^32. */
/**
 * A failure to open or read a complete compressed file in pg_receivewal's words, with the path as
 * it prints it (a `.gz` or `.lz4` that is a directory fails here). ENOENT stays as it is: a file
 * removed since readdir is no longer a candidate.
 */
function pathFailure(error: unknown, action: string, path: string, directory: string): unknown {
  return errnoCode(error) === 'ENOENT' ? error : fileSystemError(error, `${action} "${path}"`, directory);
}

async function readGzipTrailerSize(path: string, name: string, directory: string): Promise<number> {
  const failure = (error: unknown, action: string) => pathFailure(error, action, path, directory);
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw failure(error, 'could not open compressed file');
  }
  try {
    let bytesRead: number;
    const trailer = Buffer.alloc(4);
    try {
      const { size } = await handle.stat();
      ({ bytesRead } = size >= 4 ? await handle.read(trailer, 0, 4, size - 4) : { bytesRead: 0 });
    } catch (error) {
      throw failure(error, 'could not read compressed file');
    }
    if (bytesRead !== 4) {
      throw new SinkError(
        'WAL_ERR_SINK_BAD_FILE',
        `could not read compressed file "${name}": read ${bytesRead} of 4. The file is damaged; move it out of the WAL directory.`,
      );
    }
    return trailer.readUInt32LE(0);
  } finally {
    await handle.close();
  }
}

async function countLz4File(
  path: string,
  name: string,
  segmentSize: number,
  directory: string,
): Promise<number> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw pathFailure(error, 'could not open file', path, directory);
  }
  const read = readerOf(handle);
  try {
    const result = await countLz4Frames(async (target, position) => {
      try {
        return await read(target, position);
      } catch (error) {
        throw pathFailure(error, 'could not read file', path, directory);
      }
    }, segmentSize);
    if (result.error !== undefined) {
      throw new SinkError(
        'WAL_ERR_SINK_BAD_FILE',
        `could not decompress file "${name}": ${result.error}. The file is damaged; move it out of the WAL directory.`,
      );
    }
    return result.uncompressedSize;
  } finally {
    await handle.close();
  }
}

/** Counts the decompressed bytes of a `.zst` file with node:zlib, stopping once above the segment size. */
async function countZstdFile(path: string, name: string, segmentSize: number): Promise<number> {
  const factory = zstdDecompressFactory();
  if (factory === undefined) {
    throw new SinkError(
      'WAL_ERR_SINK_COMPRESSION_UNSUPPORTED',
      `cannot check file "${name}": compression with zstd is not supported by this Node.js ${process.version}. Use Node.js 22.15 or later, or move the file away.`,
    );
  }
  let total = 0;
  const enough = new Error('enough');
  try {
    await pipeline(createReadStream(path), factory(), async (source: AsyncIterable<string | Buffer>) => {
      for await (const chunk of source) {
        total += chunk.length;
        if (total > segmentSize) throw enough;
      }
    });
  } catch (error) {
    if (error === enough) return total;
    if (errnoCode(error) === 'ENOENT') throw error;
    throw new SinkError(
      'WAL_ERR_SINK_BAD_FILE',
      `could not decompress file "${name}": ${error instanceof Error ? error.message : String(error)}. The file is damaged; move it out of the WAL directory.`,
      { cause: error },
    );
  }
  return total;
}

export function readerOf(handle: FileHandle) {
  return async (target: Buffer, position: number): Promise<number> => {
    let filled = 0;
    while (filled < target.length) {
      const { bytesRead } = await handle.read(target, filled, target.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  };
}
