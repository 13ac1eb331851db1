import { type Cluster, startCluster, startStandby, testedVersions } from '@wal/pg-cluster';
import { parseLsn } from '@wal/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './index.js';

// Timeline switches need a promoted standby: one version is enough for the protocol facts.
const version = Math.max(...testedVersions());

describe(`timelines on a promoted PostgreSQL ${version} standby`, () => {
  let primary: Cluster;
  let standby: Cluster;

  beforeAll(async () => {
    primary = await startCluster({ version, segmentSizeMb: 1 });
    await primary.sql('CREATE TABLE t (x int); INSERT INTO t VALUES (1)');
    standby = await startStandby(primary);
    // WAL after the base backup's segment switch, replayed by the standby, puts the switch point
    // in the middle of a segment whose timeline-1 part the standby still has.
    const [row] = await primary.sql<{ lsn: string }>(
      'INSERT INTO t SELECT generate_series(1, 100); SELECT pg_current_wal_flush_lsn()::text AS lsn',
    );
    await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${row!.lsn}'::pg_lsn`);
    await standby.promote();
  });
  afterAll(async () => {
    await standby?.stop();
    await primary?.stop();
  });

  it('reads the history file and the end of the old timeline', async () => {
    const connection = await connect(
      {
        host: '127.0.0.1',
        port: String(standby.port),
        user: standby.superuser,
        dbname: 'replication',
        replication: 'true',
      },
      { env: { HOME: '/nonexistent' } },
    );
    try {
      const system = await connection.identifySystem();
      expect(system.timeline).toBe(2);
      const history = await connection.timelineHistory(2);
      expect(history.fileName).toBe('00000002.history');
      const text = history.content.toString('utf8');
      const match = /^1\t([0-9A-F]+\/[0-9A-F]+)\t/.exec(text);
      expect(match).not.toBeNull();
      const switchPoint = parseLsn(match![1]!);

      // Streaming the old timeline from its segment start ends at the switch point.
      const segmentStart = switchPoint & ~0xfffffn;
      expect(segmentStart).toBeLessThan(switchPoint);
      const stream = await connection.startReplication({ startLsn: segmentStart, timeline: 1 });
      if (stream.kind !== 'copy') throw new Error(`expected COPY, history: ${text}`);
      const types: string[] = [];
      for (;;) {
        const event = stream.readMessage();
        if (event === undefined) {
          await stream.waitForMessage(30_000);
          continue;
        }
        if (types.at(-1) !== event.type) types.push(event.type);
        if (event.type === 'end') {
          expect(event.result).toEqual({
            nextTimeline: { timeline: 2, startLsn: switchPoint },
            commandTags: ['START_STREAMING', 'START_REPLICATION'],
            serverClosed: false,
          });
          break;
        }
      }
      expect(types).toEqual(['copy-data', 'copy-done', 'end']);

      // At or past the switch point the server skips COPY altogether.
      expect(await connection.startReplication({ startLsn: switchPoint, timeline: 1 })).toEqual({
        kind: 'no-copy',
        result: {
          nextTimeline: { timeline: 2, startLsn: switchPoint },
          commandTags: ['START_STREAMING', 'START_REPLICATION'],
          serverClosed: false,
        },
      });
    } finally {
      await connection.close();
    }
  });
});
