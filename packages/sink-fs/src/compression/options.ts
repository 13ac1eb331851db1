import type * as Zlib from 'node:zlib';
import { WAL_COMPRESSION_SUFFIX } from '@wal/protocol';
import { SinkError } from '../errors.js';
import { nodeZlib } from '../lazy-zlib.js';

export type CompressionMethod = 'none' | 'gzip' | 'lz4' | 'zstd';

/** What `-Z/--compress` selected, after pg_receivewal's grammar was parsed (that is the CLI's job). */
export interface CompressionOptions {
  method: CompressionMethod;
  /** none: 0; gzip: -1 (zlib default) or 1..9; lz4: 0 or 1..12; zstd: zstd's range. */
  level?: number;
}

/** A validated compression choice with its level resolved. */
export interface CompressionSpec {
  method: CompressionMethod;
  level: number;
}

/** File-name suffix inserted before `.partial` (`walmethods.c:102-114`). */
export function compressionSuffix(method: CompressionMethod): string {
  return WAL_COMPRESSION_SUFFIX[method];
}

type ZstdFactory = (options?: { params?: Record<number, number>; chunkSize?: number }) => Zlib.Gzip;

/** node:zlib grew zstd in Node 22.15/23.8; Node 20 has none. Looked up at run time. */
export function zstdCompressFactory(): ZstdFactory | undefined {
  const candidate = (nodeZlib() as unknown as Record<string, unknown>).createZstdCompress;
  return typeof candidate === 'function' ? (candidate as ZstdFactory) : undefined;
}

export function zstdDecompressFactory(): (() => NodeJS.ReadWriteStream) | undefined {
  const candidate = (nodeZlib() as unknown as Record<string, unknown>).createZstdDecompress;
  return typeof candidate === 'function' ? (candidate as () => NodeJS.ReadWriteStream) : undefined;
}

/**
 * Checks a compression choice with the messages of PostgreSQL's `validate_compress_specification`
 * (`src/common/compression.c:387-457`), so the CLI can pass them through unchanged.
 */
export function resolveCompression(options: CompressionOptions | undefined): CompressionSpec {
  const method = options?.method ?? 'none';
  const level = options?.level;
  const invalid = (detail: string) =>
    new SinkError('WAL_ERR_SINK_INVALID_OPTION', `invalid compression specification: ${detail}`);
  if (level !== undefined && !Number.isInteger(level)) {
    throw invalid(`value for compression option "level" must be an integer, got ${level}`);
  }
  switch (method) {
    case 'none':
      if (level !== undefined && level !== 0) {
        throw invalid('compression algorithm "none" does not accept a compression level');
      }
      return { method, level: 0 };
    case 'gzip': {
      const resolved = level ?? -1;
      if (resolved !== -1 && (resolved < 1 || resolved > 9)) {
        throw invalid(
          'compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)',
        );
      }
      return { method, level: resolved };
    }
    case 'lz4': {
      const resolved = level ?? 0;
      if (resolved !== 0 && (resolved < 1 || resolved > 12)) {
        throw invalid(
          'compression algorithm "lz4" expects a compression level between 1 and 12 (default at 0)',
        );
      }
      return { method, level: resolved };
    }
    case 'zstd': {
      if (zstdCompressFactory() === undefined) {
        throw new SinkError(
          'WAL_ERR_SINK_COMPRESSION_UNSUPPORTED',
          `compression with zstd is not supported by this Node.js ${process.version} (node:zlib has no createZstdCompress; it needs Node.js 22.15 or later). Use gzip or lz4.`,
        );
      }
      const resolved = level ?? 3;
      if (resolved < -131072 || resolved > 22) {
        throw invalid(
          'compression algorithm "zstd" expects a compression level between -131072 and 22 (default at 3)',
        );
      }
      return { method, level: resolved };
    }
    default:
      throw invalid(`unrecognized compression algorithm: "${String(method)}"`);
  }
}
