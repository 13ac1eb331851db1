import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { type Cluster, startCluster, testedVersions } from '@wal/pg-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendMessage, decodeBackendMessage } from './backend/backend-message.js';
import { encodeFrontendMessage } from './frontend/frontend-message.js';
import { type Frame, MessageFramer } from './io/framer.js';
import { formatLsn, parseLsn } from './lsn.js';
import { toPostgresTimestamp } from './pg-time.js';
import { decodeReplicationMessage, type ReplicationMessage } from './replication/replication-message.js';
import { writeStandbyStatusUpdateFrame } from './replication/standby-status-update.js';
import { parseWalSegmentSizeSetting, segmentNumberOf, segmentStartLsn } from './wal-file-name.js';

/**
 * Talks to real PostgreSQL servers with nothing but this package's codecs: startup (protocol 3.0
 * and 3.2), replication commands, an error, and a short START_REPLICATION. With
 * WAL_RECORD_FIXTURES=1 it also writes every byte the server sent to `__fixtures__/`, which
 * `real-server-fixtures.test.ts` replays in the unit suite.
 */

const record = process.env.WAL_RECORD_FIXTURES === '1';
const versions = testedVersions();
// Keep the suite small: the oldest and the newest tested server.
const chosen = [...new Set([versions[0]!, versions[versions.length - 1]!])];

class Session {
  readonly chunks: Buffer[] = [];
  private readonly framer = new MessageFramer();
  private readonly frames: Frame[] = [];
  private waiting: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(Buffer.from(chunk));
      this.framer.push(chunk);
      try {
        for (let frame = this.framer.next(); frame !== undefined; frame = this.framer.next())
          this.frames.push(frame);
      } catch (error) {
        this.failure = error as Error;
      }
      this.waiting?.();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.waiting?.();
    });
    socket.on('close', () => {
      this.failure ??= new Error('connection closed');
      this.waiting?.();
    });
  }

  static open(cluster: Cluster): Promise<Session> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: cluster.host, port: cluster.port }, () => resolve(new Session(socket)));
      socket.once('error', reject);
    });
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  async message(): Promise<BackendMessage> {
    while (this.frames.length === 0) {
      if (this.failure !== undefined) throw this.failure;
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = undefined;
    }
    const frame = this.frames.shift()!;
    return decodeBackendMessage(frame.code, frame.payload);
  }

  /** Messages up to and including ReadyForQuery. */
  async untilReady(): Promise<BackendMessage[]> {
    const messages: BackendMessage[] = [];
    for (;;) {
      const message = await this.message();
      messages.push(message);
      if (message.type === 'ReadyForQuery') return messages;
    }
  }

  close(): void {
    this.socket.end(encodeFrontendMessage({ type: 'Terminate' }));
  }
}

function text(value: Buffer | null | undefined): string | null {
  return value === null || value === undefined ? null : value.toString('utf8');
}

describe.each(chosen)('a real PostgreSQL %i server', (version) => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ version });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("answers libpq 19's grease request (3.9999) with NegotiateProtocolVersion, as the fake walsender does", async () => {
    const session = await Session.open(cluster);
    session.send(
      encodeFrontendMessage({
        type: 'StartupMessage',
        protocolVersion: (3 << 16) | 9999,
        parameters: {
          user: cluster.superuser,
          database: 'replication',
          replication: 'true',
          '_pq_.test_protocol_negotiation': '',
        },
      }),
    );
    const startup = await session.untilReady();
    // apps/fake-walsender/src/server.test.ts expects these same bytes from the fake.
    expect(startup[0]).toEqual({
      type: 'NegotiateProtocolVersion',
      newestMinorVersion: version >= 18 ? 2 : 0,
      unrecognizedOptions: ['_pq_.test_protocol_negotiation'],
    });
    const key = startup.find((message) => message.type === 'BackendKeyData');
    expect(key?.type === 'BackendKeyData' && key.secretKey.length).toBe(version >= 18 ? 32 : 4);
    session.close();
  });

  it.each([196608, 196610])(
    'runs a replication session with protocol version %i',
    async (protocolVersion) => {
      const session = await Session.open(cluster);
      session.send(
        encodeFrontendMessage({
          type: 'StartupMessage',
          protocolVersion,
          parameters: {
            user: cluster.superuser,
            database: 'replication',
            replication: 'true',
            application_name: 'wal-protocol-test',
          },
        }),
      );
      const startup = await session.untilReady();
      const types = startup.map((message) => message.type);
      if (protocolVersion === 196610 && version < 18) {
        expect(startup[0]).toEqual({
          type: 'NegotiateProtocolVersion',
          newestMinorVersion: 0,
          unrecognizedOptions: [],
        });
      } else {
        expect(types).not.toContain('NegotiateProtocolVersion');
      }
      expect(types).toContain('AuthenticationOk');
      const parameters = new Map(
        startup.flatMap((message) =>
          message.type === 'ParameterStatus' ? [[message.name, message.value] as const] : [],
        ),
      );
      expect(parameters.get('integer_datetimes')).toBe('on');
      expect(parameters.get('server_version')).toMatch(new RegExp(`^${version}\\.`));
      const keyData = startup.find((message) => message.type === 'BackendKeyData');
      expect(keyData?.secretKey.length).toBe(protocolVersion === 196610 && version >= 18 ? 32 : 4);
      expect(startup[startup.length - 1]).toEqual({ type: 'ReadyForQuery', transactionStatus: 'I' });

      session.send(encodeFrontendMessage({ type: 'Query', sql: 'IDENTIFY_SYSTEM' }));
      const identify = await session.untilReady();
      const description = identify.find((message) => message.type === 'RowDescription');
      expect(description?.fields.map((field) => field.name)).toEqual([
        'systemid',
        'timeline',
        'xlogpos',
        'dbname',
      ]);
      expect(description?.fields[1]?.typeOid).toBe(version >= 16 ? 20 : 23);
      const row = identify.find((message) => message.type === 'DataRow');
      expect(row?.values[3]).toBeNull();
      const timeline = Number(text(row?.values[1]));
      const position = parseLsn(text(row?.values[2]) ?? '');
      expect(identify).toContainEqual({ type: 'CommandComplete', tag: 'IDENTIFY_SYSTEM' });

      session.send(encodeFrontendMessage({ type: 'Query', sql: 'SHOW wal_segment_size' }));
      const show = await session.untilReady();
      const sizeRow = show.find((message) => message.type === 'DataRow');
      const segmentSize = parseWalSegmentSizeSetting(text(sizeRow?.values[0]) ?? '');
      expect(segmentSize).toBe(cluster.segmentSize);

      session.send(encodeFrontendMessage({ type: 'Query', sql: 'DROP_REPLICATION_SLOT "no_such_slot"' }));
      const failed = await session.untilReady();
      const error = failed.find((message) => message.type === 'ErrorResponse');
      expect(error?.fields).toMatchObject({
        severity: 'ERROR',
        severityNonLocalized: 'ERROR',
        code: '42704',
      });
      expect(error?.fields.message).toContain('no_such_slot');
      expect(error?.fields.routine).toBeTypeOf('string');

      // Start within the last WAL page before the flush position (pg_receivewal starts at a segment
      // start; any LSN works, and this keeps the recorded fixtures small).
      const start = ((position - 1n) / 8192n) * 8192n;
      expect(segmentStartLsn(segmentNumberOf(start, segmentSize), segmentSize) <= start).toBe(true);
      session.send(
        encodeFrontendMessage({
          type: 'Query',
          sql: `START_REPLICATION ${formatLsn(start)} TIMELINE ${timeline}`,
        }),
      );
      expect(await session.message()).toEqual({ type: 'CopyBothResponse', format: 0, columnFormats: [] });
      const first = await session.message();
      if (first.type !== 'CopyData') throw new Error(`expected CopyData, got ${first.type}`);
      const wal = decodeReplicationMessage(first.data);
      expect(wal).toMatchObject({ type: 'XLogData', dataStart: start });
      if (wal.type === 'XLogData') expect(wal.data.length).toBeGreaterThanOrEqual(Number(position - start));
      // Ask for a keepalive: the walsender answers a status update that requests a reply.
      const feedback = Buffer.allocUnsafe(39);
      session.send(
        writeStandbyStatusUpdateFrame(feedback, {
          writeLsn: start,
          flushLsn: start,
          applyLsn: 0n,
          sendTime: toPostgresTimestamp(),
          replyRequested: true,
        }),
      );
      let keepalive: ReplicationMessage | undefined;
      while (keepalive === undefined) {
        const message = await session.message();
        if (message.type !== 'CopyData') throw new Error(`expected CopyData, got ${message.type}`);
        const decoded = decodeReplicationMessage(message.data);
        if (decoded.type === 'PrimaryKeepalive') keepalive = decoded;
      }
      expect(keepalive).toMatchObject({ type: 'PrimaryKeepalive', replyRequested: false });

      session.send(encodeFrontendMessage({ type: 'CopyDone' }));
      const ending: BackendMessage[] = [];
      for (;;) {
        const message = await session.message();
        if (message.type === 'CopyData') continue;
        ending.push(message);
        if (message.type === 'ReadyForQuery') break;
      }
      // Observed on PostgreSQL 14 and 18: both commands report completion.
      expect(ending).toEqual([
        { type: 'CopyDone' },
        { type: 'CommandComplete', tag: 'START_STREAMING' },
        { type: 'CommandComplete', tag: 'START_REPLICATION' },
        { type: 'ReadyForQuery', transactionStatus: 'I' },
      ]);
      session.close();

      if (record) {
        const fixture = {
          description:
            `Every byte a PostgreSQL ${parameters.get('server_version')} server sent in one replication session ` +
            `(protocol ${protocolVersion >> 16}.${protocolVersion & 0xffff}), as received in socket chunks. ` +
            'Recorded by real-server.integration.test.ts with WAL_RECORD_FIXTURES=1.',
          serverVersion: parameters.get('server_version'),
          protocolVersion,
          startLsn: formatLsn(start),
          chunks: session.chunks.map((chunk) => chunk.toString('base64')),
        };
        const name = `pg${version}-protocol-3.${protocolVersion & 0xffff}-replication-session.json`;
        await writeFile(
          new URL(`./__fixtures__/${name}`, import.meta.url),
          `${JSON.stringify(fixture, null, 2)}\n`,
        );
      }
    },
  );
});
