import { describe, expect, it } from 'vitest';
import { SinkError } from '../errors.js';
import { compressionSuffix, resolveCompression, zstdCompressFactory } from './options.js';

describe('resolveCompression', () => {
  it('resolves default levels like PostgreSQL', () => {
    expect(resolveCompression(undefined)).toEqual({ method: 'none', level: 0 });
    expect(resolveCompression({ method: 'gzip' })).toEqual({ method: 'gzip', level: -1 });
    expect(resolveCompression({ method: 'gzip', level: 9 })).toEqual({ method: 'gzip', level: 9 });
    expect(resolveCompression({ method: 'lz4' })).toEqual({ method: 'lz4', level: 0 });
    expect(resolveCompression({ method: 'lz4', level: 12 })).toEqual({ method: 'lz4', level: 12 });
  });

  it.each([
    [{ method: 'none', level: 1 }, 'compression algorithm "none" does not accept a compression level'],
    [
      { method: 'gzip', level: 0 },
      'compression algorithm "gzip" expects a compression level between 1 and 9',
    ],
    [
      { method: 'gzip', level: 10 },
      'compression algorithm "gzip" expects a compression level between 1 and 9',
    ],
    [
      { method: 'lz4', level: 13 },
      'compression algorithm "lz4" expects a compression level between 1 and 12',
    ],
    [
      { method: 'lz4', level: -1 },
      'compression algorithm "lz4" expects a compression level between 1 and 12',
    ],
    [{ method: 'gzip', level: 1.5 }, 'must be an integer'],
    [{ method: 'brotli' }, 'unrecognized compression algorithm: "brotli"'],
  ] as const)('rejects %j', (options, message) => {
    const attempt = () => resolveCompression(options as never);
    expect(attempt).toThrow(SinkError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as SinkError).code).toBe('WAL_ERR_SINK_INVALID_OPTION');
    }
  });

  it.runIf(zstdCompressFactory() === undefined)('refuses zstd clearly where node:zlib lacks it', () => {
    try {
      resolveCompression({ method: 'zstd' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).code).toBe('WAL_ERR_SINK_COMPRESSION_UNSUPPORTED');
      expect((error as SinkError).message).toMatch(/zstd is not supported by this Node\.js/);
    }
  });

  it('names suffixes like walmethods.c', () => {
    expect(['none', 'gzip', 'lz4', 'zstd'].map((method) => compressionSuffix(method as never))).toEqual([
      '',
      '.gz',
      '.lz4',
      '.zst',
    ]);
  });
});
