import type { OutputSink, StreamEncoder } from './encoder.js';
import { Xxhash32, xxhash32 } from './xxhash32.js';

/**
 * LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md) written around
 * lz4-napi's raw block compressor, because lz4-napi only offers whole-buffer frame functions and a
 * WAL segment must be streamed (docs/adr/0003-lz4.md). The frame is what `LZ4F_decompress` (used by
 * pg_receivewal's directory scan, pg_waldump and the `lz4` tool) reads.
 */
export const LZ4_FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;

type BlockCompressor = (block: Buffer) => Promise<Buffer>;
let loadingCompressor: Promise<BlockCompressor> | undefined;
let loadedCompressor: BlockCompressor | undefined;

/**
 * lz4-napi's block compressor, loaded on first use: the native module adds megabytes to the
 * resident set (bench/README.md, "Memory"), and only `-Z lz4` needs it (reading LZ4 files during the scan is our own code).
 */
function blockCompressor(): Promise<BlockCompressor> {
  loadingCompressor ??= import('lz4-napi').then((module) => {
    loadedCompressor = module.compress as BlockCompressor;
    return loadedCompressor;
  });
  return loadingCompressor;
}
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Block-maximum-size ids of the BD byte: 4 = 64 KiB ... 7 = 4 MiB. */
const BLOCK_SIZES: Record<number, number> = {
  4: 64 * 1024,
  5: 256 * 1024,
  6: 1024 * 1024,
  7: 4 * 1024 * 1024,
};
const UNCOMPRESSED_BLOCK_FLAG = 0x80000000;
/** 64 KiB blocks: LZ4F's default (`LZ4F_max64KB`), which pg_receivewal's zeroed preferences select. */
export const LZ4_BLOCK_SIZE = 64 * 1024;
const END_MARK = Buffer.alloc(4);

/** Frame header: magic, FLG, BD, header checksum. */
export function lz4FrameHeader(options: { contentChecksum: boolean }): Buffer {
  const header = Buffer.alloc(7);
  header.writeUInt32LE(LZ4_FRAME_MAGIC, 0);
  // FLG: version 01, independent blocks (each block is compressed on its own), no block
  // checksums, no content size (unknown while streaming), optional content checksum, no dictionary.
  header[4] = 0b0110_0000 | (options.contentChecksum ? 0b0000_0100 : 0);
  header[5] = 4 << 4; // BD: 64 KiB maximum block size
  header[6] = (xxhash32(header.subarray(4, 6)) >>> 8) & 0xff;
  return header;
}

/**
 * Streams WAL into one LZ4 frame. Whole 64 KiB blocks are compressed straight from the caller's
 * buffer; only a trailing piece shorter than a block is copied into the staging block.
 */
export class Lz4FrameEncoder implements StreamEncoder {
  private readonly staging = Buffer.allocUnsafe(LZ4_BLOCK_SIZE);
  private stagedLength = 0;
  private headerWritten = false;
  private destroyed = false;
  private contentHash: Xxhash32 | undefined;

  constructor(
    private readonly output: OutputSink,
    options: { contentChecksum?: boolean } = {},
  ) {
    if (options.contentChecksum) this.contentHash = new Xxhash32();
  }

  async write(data: Buffer): Promise<void> {
    await this.ensureHeader();
    this.contentHash?.update(data);
    let offset = 0;
    if (this.stagedLength > 0) {
      const taken = Math.min(data.length, LZ4_BLOCK_SIZE - this.stagedLength);
      data.copy(this.staging, this.stagedLength, 0, taken);
      this.stagedLength += taken;
      offset = taken;
      if (this.stagedLength === LZ4_BLOCK_SIZE) {
        await this.writeBlock(this.staging);
        this.stagedLength = 0;
      }
    }
    while (data.length - offset >= LZ4_BLOCK_SIZE) {
      await this.writeBlock(data.subarray(offset, offset + LZ4_BLOCK_SIZE));
      offset += LZ4_BLOCK_SIZE;
    }
    if (offset < data.length) {
      data.copy(this.staging, 0, offset);
      this.stagedLength = data.length - offset;
    }
  }

  async flush(): Promise<void> {
    await this.ensureHeader();
    if (this.stagedLength > 0) {
      await this.writeBlock(this.staging.subarray(0, this.stagedLength));
      this.stagedLength = 0;
    }
  }

  async end(): Promise<void> {
    await this.flush();
    if (this.contentHash === undefined) {
      await this.output([END_MARK]);
    } else {
      const checksum = Buffer.alloc(4);
      checksum.writeUInt32LE(this.contentHash.digest(), 0);
      await this.output([END_MARK, checksum]);
    }
  }

  destroy(): void {
    this.destroyed = true;
  }

  private async ensureHeader(): Promise<void> {
    if (this.destroyed) throw new Error('LZ4 encoder used after destroy()');
    if (!this.headerWritten) {
      this.headerWritten = true;
      await this.output([lz4FrameHeader({ contentChecksum: this.contentHash !== undefined })]);
    }
  }

  private async writeBlock(block: Buffer): Promise<void> {
    // lz4-napi compresses on the libuv thread pool (the event loop keeps answering keepalives) and
    // returns the block with its uncompressed size prepended (lz4_flex `compress_prepend_size`).
    const compress = loadedCompressor ?? (await blockCompressor());
    const compressed = (await compress(block)).subarray(4);
    const header = Buffer.allocUnsafe(4);
    if (compressed.length < block.length) {
      header.writeUInt32LE(compressed.length, 0);
      await this.output([header, compressed]);
    } else {
      // Incompressible: store as is (high bit of the size), as LZ4F does.
      header.writeUInt32LE((UNCOMPRESSED_BLOCK_FLAG | block.length) >>> 0, 0);
      await this.output([header, block]);
    }
  }
}

/** What a frame reader found: the uncompressed byte count, and whether the frame was complete. */
export interface Lz4CountResult {
  uncompressedSize: number;
  complete: boolean;
  /** Set when the data are not a valid LZ4 frame. */
  error?: string;
}

/** A random-access byte source (a file handle in production, a Buffer in tests). */
export type ReadAt = (target: Buffer, position: number) => Promise<number>;

/**
 * Decodes a frame sequence just far enough to count its uncompressed bytes, like pg_receivewal's
 * scan (`FindStreamingStart`, which decompresses in 64 kB chunks and stops once the total exceeds
 * the segment size). Counting sequences validates the block structure without producing output.
 */
export async function countLz4Frames(readAt: ReadAt, stopAbove: number): Promise<Lz4CountResult> {
  let position = 0;
  let total = 0;
  const word = Buffer.alloc(8);
  let block = Buffer.allocUnsafe(LZ4_BLOCK_SIZE);
  let frames = 0;
  for (;;) {
    const magicRead = await readAt(word.subarray(0, 4), position);
    if (magicRead === 0 && frames > 0) return { uncompressedSize: total, complete: true };
    if (magicRead < 4) return { uncompressedSize: total, complete: false };
    const magic = word.readUInt32LE(0);
    position += 4;
    if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if ((await readAt(word.subarray(0, 4), position)) < 4)
        return { uncompressedSize: total, complete: false };
      position += 4 + word.readUInt32LE(0);
      frames += 1;
      continue;
    }
    if (magic !== LZ4_FRAME_MAGIC) {
      return {
        uncompressedSize: total,
        complete: false,
        error: `unknown frame magic 0x${magic.toString(16)}`,
      };
    }
    const descriptor = Buffer.alloc(15);
    const descriptorRead = await readAt(descriptor.subarray(0, 2), position);
    if (descriptorRead < 2) return { uncompressedSize: total, complete: false };
    const flags = descriptor[0]!;
    const blockDescriptor = descriptor[1]!;
    if (flags >> 6 !== 1)
      return { uncompressedSize: total, complete: false, error: 'unsupported frame version' };
    if ((flags & 0b10) !== 0 || (blockDescriptor & 0b1000_1111) !== 0) {
      return { uncompressedSize: total, complete: false, error: 'reserved frame descriptor bits are set' };
    }
    const blockMaximum = BLOCK_SIZES[(blockDescriptor >> 4) & 0b111];
    if (blockMaximum === undefined) {
      return { uncompressedSize: total, complete: false, error: 'invalid maximum block size' };
    }
    const independent = (flags & 0b0010_0000) !== 0;
    const blockChecksums = (flags & 0b0001_0000) !== 0;
    const hasContentSize = (flags & 0b0000_1000) !== 0;
    const contentChecksum = (flags & 0b0000_0100) !== 0;
    const hasDictionary = (flags & 0b0000_0001) !== 0;
    const descriptorLength = 2 + (hasContentSize ? 8 : 0) + (hasDictionary ? 4 : 0);
    if ((await readAt(descriptor.subarray(0, descriptorLength + 1), position)) < descriptorLength + 1) {
      return { uncompressedSize: total, complete: false };
    }
    const expectedChecksum = (xxhash32(descriptor.subarray(0, descriptorLength)) >>> 8) & 0xff;
    if (descriptor[descriptorLength] !== expectedChecksum) {
      return { uncompressedSize: total, complete: false, error: 'frame header checksum mismatch' };
    }
    position += descriptorLength + 1;
    if (block.length < blockMaximum) block = Buffer.allocUnsafe(blockMaximum);
    let frameTotal = 0;
    for (;;) {
      if ((await readAt(word.subarray(0, 4), position)) < 4)
        return { uncompressedSize: total, complete: false };
      position += 4;
      const sizeField = word.readUInt32LE(0);
      if (sizeField === 0) break;
      const size = sizeField & 0x7fffffff;
      if (size > blockMaximum) {
        return {
          uncompressedSize: total,
          complete: false,
          error: `block of ${size} bytes exceeds the frame maximum`,
        };
      }
      let produced: number;
      if ((sizeField & UNCOMPRESSED_BLOCK_FLAG) !== 0) {
        produced = size;
      } else {
        const read = await readAt(block.subarray(0, size), position);
        if (read < size) return { uncompressedSize: total, complete: false };
        const window = independent ? 0 : Math.min(frameTotal, 65535);
        const counted = countLz4BlockOutput(block.subarray(0, size), window, blockMaximum);
        if (typeof counted === 'string') return { uncompressedSize: total, complete: false, error: counted };
        produced = counted;
      }
      position += size + (blockChecksums ? 4 : 0);
      frameTotal += produced;
      total += produced;
      if (total > stopAbove) return { uncompressedSize: total, complete: false };
    }
    position += contentChecksum ? 4 : 0;
    frames += 1;
  }
}

/**
 * Walks the sequences of one LZ4 block (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md)
 * and returns its decompressed length, or a message when the block is malformed: a match before the
 * start of the available history, or lengths running past the block.
 */
export function countLz4BlockOutput(block: Buffer, history: number, maximum: number): number | string {
  let input = 0;
  let produced = 0;
  const end = block.length;
  while (input < end) {
    const token = block[input++]!;
    let literalLength = token >> 4;
    if (literalLength === 15) {
      const extension = lengthExtension(block, input);
      if (extension < 0) return 'literal length runs past the block';
      literalLength += extension;
      input += lengthExtensionBytes(extension);
    }
    if (input + literalLength > end) return 'literals run past the block';
    input += literalLength;
    produced += literalLength;
    if (input === end) break; // the last sequence has literals only
    if (input + 2 > end) return 'match offset runs past the block';
    const offset = block[input]! | (block[input + 1]! << 8);
    input += 2;
    if (offset === 0 || offset > produced + history) return `invalid match offset ${offset}`;
    let matchLength = (token & 0x0f) + 4;
    if ((token & 0x0f) === 15) {
      const extension = lengthExtension(block, input);
      if (extension < 0) return 'match length runs past the block';
      matchLength += extension;
      input += lengthExtensionBytes(extension);
    }
    produced += matchLength;
    if (produced > maximum) return 'block decompresses beyond the maximum block size';
  }
  return produced;
}

/**
 * Decodes the start of the first block of an LZ4 frame, up to `length` bytes: enough to read a WAL
 * long page header (40 bytes) for the directory guard without decompressing a whole segment.
 */
export async function readLz4Prefix(readAt: ReadAt, length: number): Promise<Buffer | undefined> {
  const header = Buffer.alloc(19);
  const headerRead = await readAt(header, 0);
  if (headerRead < 7 || header.readUInt32LE(0) !== LZ4_FRAME_MAGIC) return undefined;
  const flags = header[4]!;
  const blockMaximum = BLOCK_SIZES[(header[5]! >> 4) & 0b111];
  if (blockMaximum === undefined) return undefined;
  const position = 4 + 2 + ((flags & 0b1000) !== 0 ? 8 : 0) + ((flags & 0b1) !== 0 ? 4 : 0) + 1;
  const sizeWord = Buffer.alloc(4);
  if ((await readAt(sizeWord, position)) < 4) return undefined;
  const sizeField = sizeWord.readUInt32LE(0);
  const size = sizeField & 0x7fffffff;
  if (sizeField === 0 || size > blockMaximum) return undefined;
  const block = Buffer.allocUnsafe(size);
  if ((await readAt(block, position + 4)) < size) return undefined;
  if ((sizeField & UNCOMPRESSED_BLOCK_FLAG) !== 0) return block.subarray(0, Math.min(length, size));
  return decodeLz4Block(block, length);
}

/** Decompresses one block until `limit` bytes are produced (or the block ends). */
export function decodeLz4Block(block: Buffer, limit: number): Buffer | undefined {
  const output = Buffer.alloc(limit);
  let input = 0;
  let produced = 0;
  const end = block.length;
  while (input < end && produced < limit) {
    const token = block[input++]!;
    let literalLength = token >> 4;
    if (literalLength === 15) {
      const extension = lengthExtension(block, input);
      if (extension < 0) return undefined;
      literalLength += extension;
      input += lengthExtensionBytes(extension);
    }
    if (input + literalLength > end) return undefined;
    const copied = Math.min(literalLength, limit - produced);
    block.copy(output, produced, input, input + copied);
    produced += copied;
    input += literalLength;
    if (input === end || produced >= limit) break;
    if (input + 2 > end) return undefined;
    const offset = block[input]! | (block[input + 1]! << 8);
    input += 2;
    if (offset === 0 || offset > produced) return undefined;
    let matchLength = (token & 0x0f) + 4;
    if ((token & 0x0f) === 15) {
      const extension = lengthExtension(block, input);
      if (extension < 0) return undefined;
      matchLength += extension;
      input += lengthExtensionBytes(extension);
    }
    // Byte by byte: a match may overlap its own output (offset < length), which repeats a pattern.
    for (let index = 0; index < matchLength && produced < limit; index += 1) {
      output[produced] = output[produced - offset]!;
      produced += 1;
    }
  }
  return output.subarray(0, produced);
}

/**
 * The sum of the length extension bytes of an LZ4 sequence starting at `input` (a byte of 255 means
 * another follows), or -1 when they run past the end of the block.
 */
function lengthExtension(block: Buffer, input: number): number {
  let sum = 0;
  for (let at = input; at < block.length; at += 1) {
    const extension = block[at]!;
    sum += extension;
    if (extension !== 255) return sum;
  }
  return -1;
}

/** How many bytes an extension of `sum` takes: every byte but the last is 255, the last less. */
function lengthExtensionBytes(sum: number): number {
  return Math.floor(sum / 255) + 1;
}
