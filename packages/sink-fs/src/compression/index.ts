import type { OutputSink, StreamEncoder } from './encoder.js';
import { Lz4FrameEncoder } from './lz4-frame.js';
import type { CompressionSpec } from './options.js';
import { ZlibStreamEncoder } from './zlib-encoder.js';

export type { OutputSink, StreamEncoder } from './encoder.js';
export {
  type CompressionMethod,
  type CompressionOptions,
  type CompressionSpec,
  compressionSuffix,
  resolveCompression,
} from './options.js';

/** The streaming encoder for a compressed segment, or undefined for `none` (written in place). */
export function createEncoder(spec: CompressionSpec, sink: OutputSink): StreamEncoder | undefined {
  switch (spec.method) {
    case 'none':
      return undefined;
    case 'gzip':
      return ZlibStreamEncoder.gzip(sink, spec.level);
    case 'lz4':
      // lz4-napi has one (fast) compressor; levels 1..12 (LZ4 HC) are accepted and written as
      // fast LZ4, which every LZ4 decoder reads (docs/adr/0003-lz4.md).
      return new Lz4FrameEncoder(sink);
    case 'zstd':
      return ZlibStreamEncoder.zstd(sink, spec.level);
  }
}
