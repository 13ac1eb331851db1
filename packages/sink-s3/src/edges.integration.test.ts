import { rm } from 'node:fs/promises';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { walFileName } from '@wal/protocol';
import { openS3Store } from '@wal/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink } from './s3-sink.js';
import { SEGMENT_SIZE, temporaryDirectory } from './test-support.js';

// The sink is driven directly with WAL-shaped bytes: what matters is when the open segment's
// `.partial` goes to the store and when a write waits, not what the WAL says.
let s3: ScriptedS3;

async function until(read: () => boolean, what: string): Promise<void> {
  const giveUpAt = Date.now() + 30_000;
  while (!read()) {
    if (Date.now() > giveUpAt) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('S3Sink at the edges', () => {
  beforeAll(async () => {
    s3 = await startScriptedS3({ buckets: ['archive'] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('uploads the open segment whose first bytes came in the write that completed the segment before it', async () => {
    const spool = await temporaryDirectory('sink-s3-partial-');
    const store = openS3Store('s3://archive/crossing', { env: s3.env, retry: { attempts: 1 } });
    const sink = new S3Sink({ store, spool, ack: 'remote', partialUploadIntervalMs: 200 });
    try {
      await sink.prepare({ systemId: 7n, segmentSize: SEGMENT_SIZE });
      const start = BigInt(SEGMENT_SIZE);
      // One write: the rest of segment 1 and the first 4 KiB of segment 2; then the server is idle.
      await sink.write(1, start, Buffer.alloc(SEGMENT_SIZE + 4096, 1));
      await sink.flush();
      const partial = `crossing/${walFileName(1, 2n, SEGMENT_SIZE)}.partial`;
      await until(() => s3.objects.has(partial), `${partial} in the store`);
      await until(() => sink.uploadStatus().confirmedLsn >= 2n * start + 4096n, 'the confirmed position');
      expect(sink.durableLsn).toBe(2n * start + 4096n);
      await sink.finish();
      await sink.close();
    } finally {
      sink.stop();
      store.close();
      await rm(spool, { recursive: true, force: true });
    }
  }, 60_000);

  it('takes a write that completes more segments than may wait, once the spool is empty', async () => {
    const spool = await temporaryDirectory('sink-s3-partial-');
    const store = openS3Store('s3://archive/bound', { env: s3.env, retry: { attempts: 1 } });
    const sink = new S3Sink({ store, spool, maxQueuedFiles: 1, partialUploadIntervalMs: 0 });
    try {
      await sink.prepare({ systemId: 7n, segmentSize: SEGMENT_SIZE });
      const start = BigInt(SEGMENT_SIZE);
      await sink.write(1, start, Buffer.alloc(2 * SEGMENT_SIZE + 4096, 1));
      await sink.finish();
      for (const n of [1n, 2n]) expect(s3.objects.has(`bound/${walFileName(1, n, SEGMENT_SIZE)}`)).toBe(true);
      await sink.close();
    } finally {
      sink.stop();
      store.close();
      await rm(spool, { recursive: true, force: true });
    }
  }, 30_000);

  it('refuses a write that completes a segment after finish(): nothing would upload it', async () => {
    const spool = await temporaryDirectory('sink-s3-partial-');
    const store = openS3Store('s3://archive/stopped', { env: s3.env, retry: { attempts: 1 } });
    const sink = new S3Sink({ store, spool, partialUploadIntervalMs: 0 });
    try {
      await sink.prepare({ systemId: 7n, segmentSize: SEGMENT_SIZE });
      const start = BigInt(SEGMENT_SIZE);
      await sink.write(1, start, Buffer.alloc(4096, 1));
      await sink.finish();
      await expect(sink.write(1, start + 4096n, Buffer.alloc(SEGMENT_SIZE, 1))).rejects.toMatchObject({
        code: 'WAL_ERR_SINK_S3_STOPPED',
      });
      // What was listed before stays readable.
      await expect(sink.hasHistoryFile(2)).resolves.toBe(false);
      await sink.close();
    } finally {
      sink.stop();
      store.close();
      await rm(spool, { recursive: true, force: true });
    }
  }, 30_000);
});
