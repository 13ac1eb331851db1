import { readdirSync, readlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { walFileName } from '@wal/protocol';
import { openS3Store, type S3Store } from '@wal/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink } from './s3-sink.js';
import type { StoredObject, UploadStore } from './store.js';
import { SEGMENT_SIZE, spoolNames, temporaryDirectory } from './test-support.js';

// The sink is driven directly with WAL-shaped bytes: what matters here is when each upload starts
// and ends, which a scripted store makes slow or refuses, not what the WAL says.
let s3: ScriptedS3;
let runs = 0;

/** The real store, with a log of when each PUT started and ended and whether it was aborted. */
class LoggedStore implements UploadStore {
  readonly url: string;
  readonly log: string[] = [];

  constructor(readonly store: S3Store) {
    this.url = store.url;
  }

  put(name: string, body: Buffer, options?: { ifNoneMatch?: boolean; signal?: AbortSignal }) {
    return this.#logged(name, options?.signal, () => this.store.put(name, body, options));
  }

  putFile(name: string, path: string, options?: { ifNoneMatch?: boolean; signal?: AbortSignal }) {
    return this.#logged(name, options?.signal, () => this.store.putFile(name, path, options));
  }

  async #logged<T>(name: string, signal: AbortSignal | undefined, put: () => Promise<T>): Promise<T> {
    this.log.push(`start ${name}`);
    const aborted = () => this.log.push(`abort ${name}`);
    signal?.addEventListener('abort', aborted, { once: true });
    try {
      return await put();
    } finally {
      signal?.removeEventListener('abort', aborted);
      this.log.push(`end ${name}`);
    }
  }

  list(): AsyncIterable<StoredObject> {
    return this.store.list();
  }

  delete(name: string): Promise<void> {
    return this.store.delete(name);
  }
}

function segment(timeline: number, number: number): string {
  return walFileName(timeline, BigInt(number), SEGMENT_SIZE);
}

/** A sink over a new prefix of the scripted store; its spool, store and prefix. */
async function newSink(options: { uploadConcurrency?: number; ack?: 'remote' } = {}) {
  runs += 1;
  const prefix = `run-${runs}`;
  const spool = await temporaryDirectory('sink-s3-parallel-');
  const store = new LoggedStore(
    openS3Store(`s3://archive/${prefix}`, { env: s3.env, retry: { attempts: 1 } }),
  );
  const sink = new S3Sink({ store, spool, maxQueuedFiles: 8, partialUploadIntervalMs: 0, ...options });
  await sink.prepare({ systemId: 7n, segmentSize: SEGMENT_SIZE });
  return { sink, spool, store, prefix };
}

/** Writes segments [first, last] of `timeline` complete and a little of the next one. */
async function writeSegments(sink: S3Sink, timeline: number, first: number, last: number): Promise<void> {
  for (let number = first; number <= last + 1; number += 1) {
    const start = BigInt(number) * BigInt(SEGMENT_SIZE);
    const length = number <= last ? SEGMENT_SIZE : 4096;
    await sink.write(timeline, start, Buffer.alloc(length, number));
  }
}

async function until<T>(read: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What this process has open, by path (Linux's /proc). */
function openFiles(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  });
}

describe('S3Sink uploads several segments at once', () => {
  beforeAll(async () => {
    s3 = await startScriptedS3({ buckets: ['archive'] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('stores later segments while an earlier one is slow, and confirms nothing past the slow one', async () => {
    const { sink, spool, store, prefix } = await newSink({ uploadConcurrency: 4, ack: 'remote' });
    const slow = segment(1, 1);
    s3.fail({ operation: 'PUT', key: `${prefix}/${slow}`, fault: { kind: 'delay', ms: 8000 } });
    try {
      await writeSegments(sink, 1, 1, 4);
      await sink.flush();
      // Segments 2 to 4 are stored and out of the spool while segment 1's PUT is still waiting.
      await until(
        () => (sink.uploadStatus().queuedFiles === 1 ? true : undefined),
        'the later segments to leave the queue',
      );
      for (const n of [2, 3, 4]) expect(s3.objects.has(`${prefix}/${segment(1, n)}`)).toBe(true);
      expect(s3.objects.has(`${prefix}/${slow}`)).toBe(false);
      // The scripted store got the later PUTs while the slow one was waiting.
      const puts = s3.requests.filter((request) => request.operation === 'PUT').map((request) => request.key);
      expect(puts.slice(0, 4).sort()).toEqual([1, 2, 3, 4].map((n) => `${prefix}/${segment(1, n)}`));
      expect(store.log).toContain(`start ${slow}`);
      expect(store.log).not.toContain(`end ${slow}`);
      expect(sink.uploadStatus().confirmedLsn).toBeLessThanOrEqual(BigInt(SEGMENT_SIZE));
      expect(sink.durableLsn).toBeLessThanOrEqual(BigInt(SEGMENT_SIZE));
      // Only segment 1 waits in the spool (and the open segment).
      expect(await spoolNames(spool)).toEqual([slow, `${segment(1, 5)}.partial`]);

      await until(() => (s3.objects.has(`${prefix}/${slow}`) ? true : undefined), 'the slow segment');
      const end = 5n * BigInt(SEGMENT_SIZE);
      await until(
        () => (sink.uploadStatus().confirmedLsn >= end ? true : undefined),
        'the confirmed position',
      );
      await sink.finish();
      await sink.close();
    } finally {
      sink.stop();
      await rm(spool, { recursive: true, force: true });
    }
  }, 90_000);

  it('keeps a history file after the old timeline and before any segment of its timeline', async () => {
    const { sink, spool, store, prefix } = await newSink({ uploadConcurrency: 4 });
    s3.fail({ operation: 'PUT', key: `${prefix}/${segment(1, 1)}`, fault: { kind: 'delay', ms: 3000 } });
    s3.fail({ operation: 'PUT', key: `${prefix}/00000002.history`, fault: { kind: 'delay', ms: 2000 } });
    try {
      // Timeline 1: segments 1 and 2 complete, 3 left as `.partial` at the switch.
      await writeSegments(sink, 1, 1, 2);
      await sink.writeHistoryFile(2, Buffer.from('1\t0/3000000\tno recovery target specified\n'));
      await writeSegments(sink, 2, 3, 6);
      await sink.finish();
      await sink.close();

      const at = (event: string) => {
        const index = store.log.indexOf(event);
        expect(index, event).toBeGreaterThanOrEqual(0);
        return index;
      };
      const history = '00000002.history';
      const oldTimeline = [segment(1, 1), segment(1, 2), `${segment(1, 3)}.partial`];
      for (const name of oldTimeline) expect(at(`end ${name}`)).toBeLessThan(at(`start ${history}`));
      for (let n = 3; n <= 6; n += 1)
        expect(at(`start ${segment(2, n)}`)).toBeGreaterThan(at(`end ${history}`));
      // The old timeline's segments did go up side by side.
      expect(at(`start ${segment(1, 2)}`)).toBeLessThan(at(`end ${segment(1, 1)}`));
      expect(s3.objects.has(`${prefix}/${history}`)).toBe(true);
    } finally {
      sink.stop();
      await rm(spool, { recursive: true, force: true });
    }
  }, 90_000);

  it('a conflict in one of several uploads ends the run with that error and aborts the others', async () => {
    const { sink, spool, store, prefix } = await newSink({ uploadConcurrency: 4 });
    // Another archiver wrote segment 3 differently; segments 1 and 2 hang in the store.
    s3.seed(`${prefix}/${segment(1, 3)}`, Buffer.alloc(SEGMENT_SIZE, 99));
    for (const n of [1, 2])
      s3.fail({ operation: 'PUT', key: `${prefix}/${segment(1, n)}`, fault: { kind: 'stall' } });
    try {
      await writeSegments(sink, 1, 1, 3);
      const failure = await until(
        () =>
          sink.flush().then(
            () => undefined,
            (error: unknown) => error as Error & { code: string; cause: { code: string } },
          ),
        'the conflict to fail the sink',
      );
      expect(failure.code).toBe('WAL_ERR_SINK_S3_UPLOAD');
      expect(failure.cause.code).toBe('WAL_ERR_S3_CONFLICT');
      expect(failure.message).toContain(segment(1, 3));
      await expect(sink.finish()).rejects.toBe(failure);
      await expect(sink.write(1, 5n * BigInt(SEGMENT_SIZE), Buffer.alloc(16))).rejects.toBe(failure);
      // Closing still closes the spool's open segment (its file is no longer open), then reports the failure.
      await expect(sink.close('failure')).rejects.toBe(failure);
      expect(openFiles().filter((path) => path.startsWith(spool))).toEqual([]);
      // The stalled PUTs were aborted, not left hanging; every file stays in the spool.
      await until(
        () =>
          store.log.includes(`end ${segment(1, 2)}`) && store.log.includes(`end ${segment(1, 1)}`)
            ? true
            : undefined,
        'the stalled PUTs to end',
      );
      expect(store.log).toContain(`abort ${segment(1, 1)}`);
      expect(store.log).toContain(`abort ${segment(1, 2)}`);
      expect(await spoolNames(spool)).toEqual([
        segment(1, 1),
        segment(1, 2),
        segment(1, 3),
        `${segment(1, 4)}.partial`,
      ]);
      expect(s3.objects.has(`${prefix}/${segment(1, 1)}`)).toBe(false);
    } finally {
      sink.stop();
      await rm(spool, { recursive: true, force: true });
    }
  }, 90_000);
});
