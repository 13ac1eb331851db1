import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readLz4Prefix } from './compression/lz4-frame.js';
import { zstdDecompressFactory } from './compression/options.js';
import { errnoCode, fileSystemError, SinkError } from './errors.js';
import { nodeZlib } from './lazy-zlib.js';
import { readerOf } from './scan.js';

/** Size of `XLogLongPageHeaderData` (spec §7.2). */
const LONG_PAGE_HEADER_SIZE = 40;
const XLP_LONG_HEADER = 0x0002;
/** Every `xlp_info` flag any release defined (spec §7.2: 0x000F up to PG18). */
const XLP_ALL_FLAGS = 0x000f;
/** How much compressed input is read to decode the first 40 bytes of a segment. */
const COMPRESSED_PREFIX_READ = 64 * 1024;

/** Any segment name, whatever the segment size (the guard must not depend on the server's size). */
const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{16})(\.gz|\.lz4|\.zst)?(\.partial)?$/;

/** What the first page of a stored segment says about the system that wrote it. */
export interface StoredSystem {
  fileName: string;
  systemId: bigint;
  segmentSize: number;
}

/**
 * Reads the long page header of the newest stored segment that has one (a freshly padded
 * `.partial` is all zeros and is passed over): `xlp_sysid` at offset 24 (uint64 LE) and
 * `xlp_seg_size` at offset 32 (uint32 LE). Compressed files are decompressed just far enough.
 * No marker file is kept: the WAL itself says where it came from.
 */
export async function readStoredSystem(directory: string): Promise<StoredSystem | undefined> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    throw fileSystemError(error, `could not read directory "${directory}"`, directory);
  }
  const candidates = names
    .map((name) => ({ name, match: SEGMENT_NAME.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .sort((left, right) => {
      // Newest first: the position part (log and segment) orders segments whatever their size.
      const position = right.match[2]!.localeCompare(left.match[2]!);
      if (position !== 0) return position;
      const timeline = right.match[1]!.localeCompare(left.match[1]!);
      if (timeline !== 0) return timeline;
      return (left.match[4] === undefined ? 0 : 1) - (right.match[4] === undefined ? 0 : 1);
    });
  for (const { name, match } of candidates) {
    const header = await readFirstBytes(join(directory, name), match[3], directory, name);
    if (header === undefined || header.length < LONG_PAGE_HEADER_SIZE) continue;
    const magic = header.readUInt16LE(0);
    const info = header.readUInt16LE(2);
    const systemId = header.readBigUInt64LE(24);
    // Only a real first page counts: an XLOG_PAGE_MAGIC of some release (0xD0xx/0xD1xx), the long
    // header flag, no unknown flag bits, a system identifier. Zeros of a padded file do not.
    const plausible =
      (magic & 0xfe00) === 0xd000 && (info & XLP_LONG_HEADER) !== 0 && (info & ~XLP_ALL_FLAGS) === 0;
    if (!plausible || systemId === 0n) continue;
    return { fileName: name, systemId, segmentSize: header.readUInt32LE(32) };
  }
  return undefined;
}

/** Throws WAL_ERR_SINK_MISMATCH when the directory holds WAL of another system or segment size. */
export async function checkDirectoryMatches(
  directory: string,
  server: { systemId: bigint; segmentSize: number },
): Promise<void> {
  const stored = await readStoredSystem(directory);
  if (stored === undefined) return;
  if (stored.systemId !== server.systemId) {
    throw new SinkError(
      'WAL_ERR_SINK_MISMATCH',
      `WAL directory "${directory}" holds WAL of another database system: "${stored.fileName}" has system identifier ${stored.systemId}, the server has ${server.systemId}. Use an empty directory for this server.`,
    );
  }
  if (stored.segmentSize !== server.segmentSize) {
    throw new SinkError(
      'WAL_ERR_SINK_MISMATCH',
      `WAL directory "${directory}" holds WAL with another segment size: "${stored.fileName}" has ${stored.segmentSize}-byte segments, the server uses ${server.segmentSize}. Use an empty directory for this server.`,
    );
  }
}

async function readFirstBytes(
  path: string,
  suffix: string | undefined,
  directory: string,
  name: string,
): Promise<Buffer | undefined> {
  try {
    switch (suffix) {
      case undefined: {
        const handle = await open(path, 'r');
        try {
          const header = Buffer.alloc(LONG_PAGE_HEADER_SIZE);
          const length = await readerOf(handle)(header, 0);
          return header.subarray(0, length);
        } finally {
          await handle.close();
        }
      }
      case '.lz4': {
        const handle = await open(path, 'r');
        try {
          return await readLz4Prefix(readerOf(handle), LONG_PAGE_HEADER_SIZE);
        } finally {
          await handle.close();
        }
      }
      case '.gz':
      case '.zst': {
        const handle = await open(path, 'r');
        let prefix: Buffer;
        try {
          prefix = Buffer.alloc(COMPRESSED_PREFIX_READ);
          prefix = prefix.subarray(0, await readerOf(handle)(prefix, 0));
        } finally {
          await handle.close();
        }
        return await decompressPrefix(prefix, suffix);
      }
      default:
        return undefined;
    }
  } catch (error) {
    // Gone since readdir, or a directory under a segment's name: no WAL to compare. The resume scan
    // reports such a file in pg_receivewal's words, after this check as in pg_receivewal's order.
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    throw fileSystemError(error, `could not read the first page of "${name}"`, directory);
  }
}

/**
 * Decompresses the start of a compressed file until 40 bytes came out. A truncated stream (the
 * first 64 KiB of a file, or a `.partial` of a killed run) yields what it yields, maybe nothing.
 */
async function decompressPrefix(prefix: Buffer, suffix: '.gz' | '.zst'): Promise<Buffer | undefined> {
  if (suffix === '.gz') {
    try {
      // Z_SYNC_FLUSH as the final flush: return what decodes instead of failing on the cut end.
      const zlib = nodeZlib();
      const output = zlib.gunzipSync(prefix, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      return output.subarray(0, LONG_PAGE_HEADER_SIZE);
    } catch {
      return undefined;
    }
  }
  const factory = zstdDecompressFactory();
  if (factory === undefined) return undefined;
  const decompressor = factory();
  const chunks: Buffer[] = [];
  let length = 0;
  const done = new Promise<void>((resolve) => {
    decompressor.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= LONG_PAGE_HEADER_SIZE) resolve();
    });
    decompressor.on('error', () => resolve());
    decompressor.on('end', () => resolve());
  });
  decompressor.end(prefix);
  await done;
  (decompressor as unknown as { destroy(): void }).destroy();
  return length === 0 ? undefined : Buffer.concat(chunks, length).subarray(0, LONG_PAGE_HEADER_SIZE);
}
