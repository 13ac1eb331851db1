export {
  type CompressionMethod,
  type CompressionOptions,
  type CompressionSpec,
  compressionSuffix,
  resolveCompression,
} from './compression/index.js';
export { countLz4Frames, LZ4_FRAME_MAGIC, Lz4FrameEncoder } from './compression/lz4-frame.js';
export { checkDirectoryMatches, readStoredSystem, type StoredSystem } from './directory-guard.js';
export { DirectorySink, type DirectorySinkOptions } from './directory-sink.js';
export { SinkError, type SinkErrorCode } from './errors.js';
export { historyFileExists, writeHistoryFile } from './history-file.js';
export {
  listSegments,
  type ScanOptions,
  type ScanResult,
  type StoredSegment,
  scanDirectory,
} from './scan.js';
