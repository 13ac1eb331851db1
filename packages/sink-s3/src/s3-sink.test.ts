import { describe, expect, it } from 'vitest';
import { S3SinkError } from './errors.js';
import { S3Sink, type S3SinkOptions } from './s3-sink.js';
import type { UploadStore } from './store.js';

// The checks run in the constructor, before the store is used: a store that is never called.
const store: UploadStore = {
  url: 's3://bucket/prefix',
  put: () => Promise.reject(new Error('not called')),
  list: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('not called')) }) }),
  delete: () => Promise.reject(new Error('not called')),
};

function refusal(options: Partial<S3SinkOptions>): S3SinkError {
  try {
    new S3Sink({ store, spool: '/spool', ...options } as S3SinkOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(S3SinkError);
    return error as S3SinkError;
  }
  throw new Error('accepted');
}

describe('S3Sink options', () => {
  it('refuses what cannot work, naming the option', () => {
    expect(refusal({ store: undefined }).message).toMatch(/^store is required/);
    expect(refusal({ spool: '' }).message).toMatch(/^spool is required/);
    expect(refusal({ ack: 'cloud' as 'local' }).message).toBe(
      'invalid ack "cloud": expected "local" or "remote"',
    );
    expect(refusal({ partialUploadIntervalMs: -1 }).message).toMatch(/^partialUploadIntervalMs must be/);
    expect(refusal({ maxQueuedFiles: 0 }).message).toMatch(/^maxQueuedFiles must be a whole number >= 1/);
    expect(refusal({ maxQueuedFiles: 1.5 }).code).toBe('WAL_ERR_SINK_S3_INVALID_OPTION');
    expect(refusal({ uploadConcurrency: 0 }).message).toMatch(
      /^uploadConcurrency must be a whole number >= 1/,
    );
    expect(refusal({ uploadConcurrency: 2.5 }).code).toBe('WAL_ERR_SINK_S3_INVALID_OPTION');
  });

  it('reports nothing queued and nothing confirmed before prepare()', () => {
    const sink = new S3Sink({ store, spool: '/spool', ack: 'remote' });
    expect(sink.uploadStatus()).toEqual({ queuedFiles: 0, queuedBytes: 0, confirmedLsn: 0n });
    expect(sink.durableLsn).toBe(0n);
    expect(sink.storeUrl).toBe('s3://bucket/prefix');
  });

  it('refuses calls before prepare() with a coded error', async () => {
    const sink = new S3Sink({ store, spool: '/spool' });
    await expect(sink.resumePoint()).rejects.toMatchObject({ code: 'WAL_ERR_SINK_NOT_PREPARED' });
  });
});
