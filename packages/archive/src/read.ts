import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type * as Zlib from 'node:zlib';
import { ArchiveError, errnoCode, unreadable } from './errors.js';
import type { ArchiveFile } from './find.js';

const require = createRequire(import.meta.url);
/** The end mark of an LZ4 frame: a block size of 0. */
const LZ4_END_MARK = Buffer.alloc(4);

/**
 * The decompressed bytes of an archive file, in chunks. Read failures are `WAL_ERR_ARCHIVE_UNREADABLE`,
 * undecodable data `WAL_ERR_ARCHIVE_CORRUPT`. A `.partial` may end inside a compressed stream (the
 * receiver flushes but does not finish it): its bytes are delivered up to where the data stops.
 */
export async function* readArchiveFile(file: ArchiveFile): AsyncGenerator<Buffer> {
  switch (file.compression) {
    case 'none':
      yield* readStream(file, await openStream(file));
      return;
    case 'gzip': {
      const zlib = nodeZlib();
      const flush = file.partial ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.Z_FINISH;
      yield* readStream(file, await openStream(file), zlib.createGunzip({ finishFlush: flush }));
      return;
    }
    case 'zstd': {
      const decoder = zstdDecompressor(file);
      yield* readStream(file, await openStream(file), decoder);
      return;
    }
    case 'lz4':
      yield await readLz4File(file);
      return;
  }
}

/**
 * The first `length` decompressed bytes of a file (fewer if it is shorter): a range read of a plain
 * file, so checking a segment's first page header costs one small request on an object store;
 * a compressed file is decoded until that much is out, and the rest is not read.
 */
export async function readArchiveFileHead(file: ArchiveFile, length: number): Promise<Buffer> {
  if (file.compression === 'none') return file.source.readRange(file.name, 0, length);
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const chunk of readArchiveFile(file)) {
    chunks.push(chunk);
    have += chunk.length;
    if (have >= length) break;
  }
  return Buffer.concat(chunks, have).subarray(0, length);
}

async function openStream(file: ArchiveFile): Promise<AsyncIterable<Buffer>> {
  try {
    return await file.source.stream(file.name);
  } catch (error) {
    throw unreadable(error, `could not read "${file.path}"`);
  }
}

/** node:zlib, loaded on first use: an uncompressed archive never needs it. */
function nodeZlib(): typeof Zlib {
  return require('node:zlib') as typeof Zlib;
}

function zstdDecompressor(file: ArchiveFile): NodeJS.ReadWriteStream {
  const factory = (nodeZlib() as unknown as Record<string, unknown>).createZstdDecompress;
  if (typeof factory !== 'function') {
    throw new ArchiveError(
      'WAL_ERR_ARCHIVE_COMPRESSION_UNSUPPORTED',
      `cannot read "${file.name}": zstd is not supported by this Node.js ${process.version} (node:zlib has no createZstdDecompress; it needs Node.js 22.15 or later). Run this on a newer Node.js.`,
    );
  }
  return (factory as () => NodeJS.ReadWriteStream)();
}

async function* readStream(
  file: ArchiveFile,
  source: AsyncIterable<Buffer>,
  decoder?: NodeJS.ReadWriteStream,
): AsyncGenerator<Buffer> {
  // A plain file is iterated as the source gives it: a source reads on only when asked for more.
  let input: Readable | undefined = source instanceof Readable ? source : undefined;
  let output: AsyncIterable<Buffer> = source;
  if (decoder !== undefined) {
    input ??= Readable.from(source, { objectMode: false });
    // A read error of the source must reach the consumer of the decoder.
    input.on('error', (error) => (decoder as unknown as Readable).destroy(error));
    output = input.pipe(decoder) as unknown as AsyncIterable<Buffer>;
  }
  try {
    for await (const chunk of output) yield chunk;
  } catch (error) {
    throw readError(file, error);
  } finally {
    input?.destroy();
    (decoder as unknown as Readable | undefined)?.destroy();
  }
}

function readError(file: ArchiveFile, error: unknown): ArchiveError {
  if (error instanceof ArchiveError) return error;
  const code = errnoCode(error);
  if (code !== undefined && code.startsWith('Z_') === false && code.startsWith('ERR_') === false) {
    return unreadable(error, `could not read "${file.path}"`);
  }
  return corrupt(file, error);
}

function corrupt(file: ArchiveFile, error: unknown): ArchiveError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_CORRUPT',
    `could not decompress "${file.path}": ${reason}. The file is damaged; restore it from another copy of the archive.`,
    { cause: error },
  );
}

/**
 * A whole `.lz4` file decoded at once by lz4-napi's frame decoder (native; it checks the frame
 * and handles linked blocks as pg_receivewal writes them). Memory is bounded by one segment
 * (docs/adr/0008-wal-restore.md). A `.partial` whose frame the receiver has not ended yet is
 * decoded as if it ended after its last whole block.
 */
async function readLz4File(file: ArchiveFile): Promise<Buffer> {
  const compressed = await file.source.read(file.name);
  const lz4 = (await import('lz4-napi')) as { decompressFrameSync: (data: Buffer) => Buffer };
  try {
    return lz4.decompressFrameSync(compressed);
  } catch (error) {
    if (file.partial) {
      try {
        return lz4.decompressFrameSync(Buffer.concat([compressed, LZ4_END_MARK]));
      } catch {
        // Report the first failure: it describes the file as stored.
      }
    }
    throw corrupt(file, error);
  }
}
