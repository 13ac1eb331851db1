import type { OutputSink, StreamEncoder } from './encoder.js';
import { Lz4FrameEncoder } from './lz4-frame.js';
import type { CompressionMethod } from './options.js';
import { ZlibStreamEncoder } from './zlib-encoder.js';

export type { OutputSink, StreamEncoder } from './encoder.js';
export {
  type CompressionMethod,
  type CompressionOptions,
  type CompressionSpec,
  compressionSuffix,
  resolveCompression,
} from './options.js';

/** A method that writes through an encoder: all but `none`, which is written in place. */
export type EncodedMethod = Exclude<CompressionMethod, 'none'>;

/** The streaming encoder for a compressed segment. */
export function createEncoder(method: EncodedMethod, level: number, sink: OutputSink): StreamEncoder {
  switch (method) {
    case 'gzip':
      return ZlibStreamEncoder.gzip(sink, level);
    case 'lz4':
      // lz4-napi has one (fast) compressor; levels 1..12 (LZ4 HC) are accepted and written as
      // fast LZ4, which every LZ4 decoder reads (docs/adr/0003-lz4.md).
      return new Lz4FrameEncoder(sink);
    case 'zstd':
      return ZlibStreamEncoder.zstd(sink, level);
  }
}
