import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { type Cluster, startCluster, startStandby, testedVersions } from '@wal/pg-cluster';
import { parseLsn, parseWalFileName } from '@wal/protocol';
import { openS3Store } from '@wal/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink } from './s3-sink.js';
import { SEGMENT_SIZE, spoolNames, stream, temporaryDirectory } from './test-support.js';

// Streams from the slot's restart_lsn (READ_REPLICATION_SLOT): PostgreSQL 15 and later.
const version = testedVersions()
  .filter((tested) => tested >= 15)
  .at(-1);
let primary: Cluster;
let standby: Cluster;
let s3: ScriptedS3;

describe.skipIf(version === undefined)(`S3Sink across a timeline switch, PostgreSQL ${version}`, () => {
  beforeAll(async () => {
    [primary, s3] = await Promise.all([
      startCluster({ version: version!, segmentSizeMb: 1, settings: { wal_keep_size: '256MB' } }),
      startScriptedS3({ buckets: ['archive'] }),
    ]);
    await primary.sql('CREATE TABLE items (id int, payload text)');
    standby = await startStandby(primary, { settings: { wal_keep_size: '256MB' } });
  });
  afterAll(async () => {
    await standby?.stop();
    await Promise.all([primary?.stop(), s3?.stop()]);
  });

  it('uploads the history file before the new timeline and every segment equal to pg_wal', async () => {
    await standby.sql("SELECT pg_create_physical_replication_slot('archive', true)");
    await primary.sql("INSERT INTO items SELECT g, repeat('x', 300) FROM generate_series(1, 3000) g");
    await primary.sql('SELECT pg_switch_wal()');
    const [flushed] = await primary.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${flushed!.lsn}'`);
    await standby.promote();
    await standby.sql("INSERT INTO items SELECT g, repeat('y', 300) FROM generate_series(1, 6000) g");
    await standby.sql('SELECT pg_switch_wal()');
    const [end] = await standby.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');

    const spool = await temporaryDirectory('sink-s3-timeline-');
    const store = openS3Store('s3://archive/timeline', { env: s3.env });
    try {
      const sink = new S3Sink({ store, spool });
      const events = await stream(standby, sink, { slot: 'archive', endLsn: parseLsn(end!.lsn) - 1n });
      await sink.finish();
      expect(events.some((event) => event.type === 'timeline-switched')).toBe(true);

      const puts = s3.requests
        .filter((request) => request.operation === 'PUT' && request.fault === undefined)
        .map((request) => request.key.slice('timeline/'.length));
      const history = puts.indexOf('00000002.history');
      const firstOnTwo = puts.findIndex((name) => name.startsWith('00000002') && !name.endsWith('.history'));
      expect(history).toBeGreaterThanOrEqual(0);
      expect(firstOnTwo).toBeGreaterThan(history);
      expect(s3.objects.get('timeline/00000002.history')?.body).toEqual(
        await readFile(join(standby.pgWalDir, '00000002.history')),
      );
      const names = [...s3.objects.keys()].map((key) => key.slice('timeline/'.length));
      let complete = 0;
      for (const name of names) {
        const parsed = parseWalFileName(name, SEGMENT_SIZE);
        if (parsed === undefined || parsed.partial) continue;
        const server = await readFile(join(standby.pgWalDir, name));
        expect(s3.objects.get(`timeline/${name}`)!.body.equals(server), name).toBe(true);
        complete += 1;
      }
      expect(complete).toBeGreaterThanOrEqual(3);
      expect(names.some((name) => /^00000001[0-9A-F]{16}$/.test(name))).toBe(true);
      // Only the open segment of timeline 2 may stay in the spool; timeline 1's last .partial went up.
      const left = await spoolNames(spool);
      expect(left.every((name) => name.startsWith('00000002') && name.endsWith('.partial'))).toBe(true);
      const timelineOnePartial = names.filter((name) => /^00000001[0-9A-F]{16}\.partial$/.test(name));
      expect(timelineOnePartial.length).toBeLessThanOrEqual(1);
    } finally {
      store.close();
      await rm(spool, { recursive: true, force: true });
    }
  });
});
