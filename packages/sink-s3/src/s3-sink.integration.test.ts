import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type RunningS3rver, startS3rver } from '@wal/fake-s3';
import { type Cluster, startCluster, testedVersions } from '@wal/pg-cluster';
import { formatLsn, parseWalFileName, segmentNumberOf, walFileName } from '@wal/protocol';
import { openS3Store, type S3Store } from '@wal/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink } from './s3-sink.js';
import {
  flushLsn,
  makeSegments,
  objectNames,
  SEGMENT_SIZE,
  SwitchedStore,
  spoolNames,
  stream,
  temporaryDirectory,
} from './test-support.js';

// The streams start at the slot's restart_lsn (READ_REPLICATION_SLOT): PostgreSQL 15 and later.
const version = testedVersions()
  .filter((tested) => tested >= 15)
  .at(-1);
let cluster: Cluster;
let s3: RunningS3rver;
let systemIdentifier: bigint;
let prefixCount = 0;

/** A slot that holds the WAL from now on, so a stream starts here (each test has its own). */
async function newSlot(): Promise<string> {
  const slot = `archive_${prefixCount + 1}`;
  await cluster.sql(`SELECT pg_create_physical_replication_slot('${slot}', true)`);
  return slot;
}

// With WAL_TEST_S3_URL (and AWS credentials in the environment) the suite runs against that store
// instead of s3rver, under a prefix of its own that it empties afterwards.
const realUrl = process.env.WAL_TEST_S3_URL?.replace(/\/$/, '');
const realPrefix = `wal-test-sink-${randomBytes(6).toString('hex')}`;
const opened: string[] = [];

function newStore(): S3Store {
  prefixCount += 1;
  const store =
    realUrl === undefined
      ? openS3Store(`s3://archive/run-${prefixCount}`, {
          env: s3.env,
          retry: { attempts: 2, baseDelayMs: 10 },
        })
      : openS3Store(`${realUrl}/${realPrefix}/run-${prefixCount}`, { env: process.env });
  opened.push(store.url);
  return store;
}

async function emptyRealStores(): Promise<void> {
  if (realUrl === undefined) return;
  for (const url of opened) {
    const store = openS3Store(url, { env: process.env });
    for await (const object of store.list()) await store.delete(object.name);
    store.close();
  }
}

/** Every complete segment object equals the server's pg_wal file; the names of the objects. */
async function expectObjectsEqualPgWal(store: S3Store): Promise<string[]> {
  const names = await objectNames(store);
  for (const name of names) {
    const parsed = parseWalFileName(name, SEGMENT_SIZE);
    if (parsed === undefined || parsed.partial) continue;
    const object = await store.get(name);
    const bytes = parsed.compression === 'gzip' ? gunzipSync(object) : object;
    const server = await readFile(
      join(cluster.pgWalDir, walFileName(parsed.timeline, parsed.segmentNumber, SEGMENT_SIZE)),
    );
    expect(bytes.equals(server), name).toBe(true);
  }
  return names;
}

describe.skipIf(version === undefined)(
  `S3Sink against PostgreSQL ${version} and ${realUrl ?? 's3rver'}`,
  () => {
    beforeAll(async () => {
      [cluster, s3] = await Promise.all([
        startCluster({ version: version!, segmentSizeMb: 1, settings: { wal_keep_size: '256MB' } }),
        startS3rver({ buckets: ['archive'] }),
      ]);
      await cluster.sql('CREATE TABLE items (id int, payload text)');
      const [row] = await cluster.sql<{ id: string }>(
        'SELECT system_identifier::text AS id FROM pg_control_system()',
      );
      systemIdentifier = BigInt(row!.id);
    });
    afterAll(async () => {
      await emptyRealStores();
      await Promise.all([cluster?.stop(), s3?.stop()]);
    });

    it.each(['none', 'gzip'] as const)(
      '%s: every segment reaches the store equal to pg_wal, leaves the spool, and the spool stays bounded',
      async (method) => {
        const spool = await temporaryDirectory('sink-s3-spool-');
        const slot = await newSlot();
        const store = newStore();
        const switched = new SwitchedStore(store);
        let mostWaiting = 0;
        // A slow store: each PUT looks at what waits in the spool first.
        switched.beforePut = async () => {
          const waiting = (await spoolNames(spool)).filter((name) => !name.endsWith('.partial'));
          mostWaiting = Math.max(mostWaiting, waiting.length);
          await new Promise((resolve) => setTimeout(resolve, 30));
        };
        try {
          const endLsn = await makeSegments(cluster, 6);
          const sink = new S3Sink({ store: switched, spool, compression: { method }, maxQueuedFiles: 2 });
          const events = await stream(cluster, sink, { endLsn: endLsn - 1n, slot });
          expect(events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos' });
          await sink.finish();

          const names = await expectObjectsEqualPgWal(store);
          const complete = names.filter((name) => parseWalFileName(name, SEGMENT_SIZE)?.partial === false);
          expect(complete.length).toBeGreaterThanOrEqual(6);
          // The open segment's .partial is in the store too, and is the only file the spool keeps.
          const open = walFileName(1, segmentNumberOf(endLsn, SEGMENT_SIZE), SEGMENT_SIZE);
          const suffix = method === 'gzip' ? '.gz' : '';
          expect(names).toContain(`${open}${suffix}.partial`);
          expect(await spoolNames(spool)).toEqual([`${open}${suffix}.partial`]);
          expect(mostWaiting).toBeLessThanOrEqual(2);
          expect(sink.uploadStatus()).toMatchObject({ queuedFiles: 0, queuedBytes: 0 });
        } finally {
          store.close();
          await rm(spool, { recursive: true, force: true });
        }
      },
    );

    it('resumes from the store when the spool is empty, and uploads nothing twice', async () => {
      const spool = await temporaryDirectory('sink-s3-spool-');
      const slot = await newSlot();
      const store = newStore();
      try {
        const first = new S3Sink({ store, spool });
        await stream(cluster, first, { endLsn: (await makeSegments(cluster, 2)) - 1n, slot });
        await first.finish();
        const before = await objectNames(store);
        // A new machine: an empty spool. The stream starts where the store ends.
        await rm(spool, { recursive: true, force: true });
        const spool2 = await temporaryDirectory('sink-s3-spool-');
        const switched = new SwitchedStore(store);
        const second = new S3Sink({ store: switched, spool: spool2 });
        const endLsn = await makeSegments(cluster, 2);
        const events = await stream(cluster, second, { endLsn: endLsn - 1n, slot });
        await second.finish();
        const started = events.find((event) => event.type === 'streaming-started');
        const newestComplete = before.filter((name) => !name.endsWith('.partial')).at(-1)!;
        const resumedAt = parseWalFileName(newestComplete, SEGMENT_SIZE)!.segmentNumber + 1n;
        expect(started).toMatchObject({ lsn: resumedAt * BigInt(SEGMENT_SIZE) });
        for (const name of switched.puts)
          expect(before.filter((old) => !old.endsWith('.partial'))).not.toContain(name);
        const after = await expectObjectsEqualPgWal(store);
        // The first run's .partial was completed by the second: no stale .partial is left.
        expect(after.filter((name) => name.endsWith('.partial'))).toHaveLength(1);
        await rm(spool2, { recursive: true, force: true });
      } finally {
        store.close();
      }
    });

    it('a restart uploads what the spool still holds, without sending what the store has again', async () => {
      const spool = await temporaryDirectory('sink-s3-spool-');
      const slot = await newSlot();
      const store = newStore();
      try {
        const switched = new SwitchedStore(store);
        switched.down = true;
        const first = new S3Sink({ store: switched, spool, maxQueuedFiles: 50 });
        await first.prepare({ systemId: systemIdentifier, segmentSize: SEGMENT_SIZE });
        // The store comes back only for the listing: the first run uploads nothing and stops.
        switched.down = false;
        await first.resumePoint();
        switched.down = true;
        await stream(cluster, first, { endLsn: (await makeSegments(cluster, 3)) - 1n, slot });
        first.stop();
        const waiting = (await spoolNames(spool)).filter((name) => !name.endsWith('.partial'));
        expect(waiting.length).toBeGreaterThanOrEqual(3);
        // One of them made it to the store before the "crash" (uploaded, not yet removed).
        await store.put(waiting[0]!, await readFile(join(spool, waiting[0]!)));

        switched.down = false;
        const second = new S3Sink({ store: switched, spool });
        await stream(cluster, second, { endLsn: (await makeSegments(cluster, 1)) - 1n, slot });
        await second.finish();
        expect(switched.puts).not.toContain(waiting[0]);
        for (const name of waiting.slice(1)) expect(switched.puts).toContain(name);
        const names = await expectObjectsEqualPgWal(store);
        for (const name of waiting) expect(names).toContain(name);
        expect((await spoolNames(spool)).every((name) => name.endsWith('.partial'))).toBe(true);
      } finally {
        store.close();
        await rm(spool, { recursive: true, force: true });
      }
    });

    it('uploads the open segment while it fills: after a crash the store has the WAL up to a recent flush', async () => {
      const spool = await temporaryDirectory('sink-s3-spool-');
      const slot = await newSlot();
      const store = newStore();
      const controller = new AbortController();
      const sink = new S3Sink({ store, spool, partialUploadIntervalMs: 300, signal: controller.signal });
      const streaming = stream(cluster, sink, { slot, signal: controller.signal });
      try {
        await makeSegments(cluster, 1);
        const target = await flushLsn(cluster);
        const segment = segmentNumberOf(target, SEGMENT_SIZE);
        const name = `${walFileName(1, segment, SEGMENT_SIZE)}.partial`;
        const length = Number(target - segment * BigInt(SEGMENT_SIZE));
        // The .partial object holds the segment's WAL up to `target`, as the server's file does.
        for (let attempt = 0; ; attempt += 1) {
          const object = (await objectNames(store)).includes(name) ? await store.get(name) : undefined;
          const server = await readFile(join(cluster.pgWalDir, walFileName(1, segment, SEGMENT_SIZE)));
          if (object?.subarray(0, length).equals(server.subarray(0, length))) break;
          if (attempt > 300) throw new Error(`${name} never reached ${formatLsn(target)} in the store`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(sink.uploadStatus().confirmedLsn).toBeGreaterThanOrEqual(target);
      } finally {
        // A crash: no finish(); the uploader just stops.
        controller.abort();
        await streaming.catch(() => {});
        sink.stop();
        store.close();
        await rm(spool, { recursive: true, force: true });
      }
    });
  },
);
