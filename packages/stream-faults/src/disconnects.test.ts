import type { Session } from '@wal/fake-walsender';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  connectTo,
  disconnections,
  expectAllStored,
  FLUSH_LSN,
  HAPPY,
  isCodedWalError,
  MEGABYTE,
  makeTarget,
  onFirstConnection,
  receiveInto,
  SEGMENT,
  shutDownFirstConnectionAt,
  startReplications,
  startServer,
  statusUpdates,
} from './harness.js';

afterEach(cleanUp);

/** One full XLogData frame of the fake server: 'd', length, 25-byte header, 128 kB of WAL. */
const FRAME = 5 + 25 + 128 * 1024;

/** WAL bytes in the whole or partial XLogData messages of the first `offset` bytes of COPY output. */
function receivedWalBytes(offset: number): number {
  const whole = Math.floor(offset / FRAME);
  return whole * 128 * 1024 + Math.max(0, offset - whole * FRAME - 30);
}

describe('server shutdown inside COPY (spec §3.8)', () => {
  it('answers the keepalive, reports the terminated stream (coded), and with --no-loop stops there', async () => {
    const server = await startServer('shutdown', HAPPY);
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { noLoop: true });
    expect(isCodedWalError(run.error)).toBe(true);
    expect(run.error).toMatchObject({ code: 'WAL_ERR_STREAM_TERMINATED', retryable: true });
    expect(String((run.error as Error).message)).toMatch(/terminated before stop point.*shutting down/);
    // The shutdown waited for our reply: write = everything sent.
    expect(statusUpdates(server).at(-1)).toMatchObject({ writeLsn: FLUSH_LSN });
    expect(server.errors).toEqual([]);
    expectAllStored(directory, server);
  });

  it('with a status interval too (the ready scenario may take a periodic status as the reply and close early)', async () => {
    // The fake's shutdown() accepts the status sent at COPY start, then closes while the receiver
    // still answers the keepalive: the reply may meet a closed socket (RST), and the CommandComplete
    // be lost with it. Either way the failure is coded and retryable, and everything read is stored.
    const server = await startServer('shutdown', HAPPY);
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { noLoop: true, statusIntervalMs: 10_000 });
    expect(isCodedWalError(run.error)).toBe(true);
    expect(['WAL_ERR_STREAM_TERMINATED', 'WAL_ERR_CONNECTION_LOST']).toContain(
      (run.error as { code: string }).code,
    );
    expect((run.error as { retryable: boolean }).retryable).toBe(true);
    expect(checkDirectory(directory, server).problems).toEqual([]);
  });

  it('reconnects after COPY 0 + close and continues from the stored segment start, with no gap', async () => {
    // Connection 1 streams to the middle of segment 3 and shuts down; later ones serve the rest.
    const stopAt = 3n * SEGMENT + 0x28000n;
    const server = await startServer('happy', HAPPY, {
      script: shutDownFirstConnectionAt(stopAt),
    });
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { endLsn: FLUSH_LSN - 1n });
    expect(run.error).toBeUndefined();
    const disconnected = disconnections(run);
    expect(disconnected).toHaveLength(1);
    expect(disconnected[0]).toMatchObject({ error: { code: 'WAL_ERR_STREAM_TERMINATED' } });
    expect(startReplications(server)).toEqual([
      'START_REPLICATION 0/100000 TIMELINE 1',
      'START_REPLICATION 0/300000 TIMELINE 1',
    ]);
    expect(statusUpdates(server, 1).at(-1)).toMatchObject({ writeLsn: stopAt });
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', lsn: FLUSH_LSN });
    expect(server.errors).toEqual([]);
    expectAllStored(directory, server);
  });
});

/** Where connection 1 is cut, counted from the first byte after CopyBothResponse. */
const CUT_POINTS: { name: string; offset: number; mode?: 'end' | 'reset' }[] = [
  { name: 'inside the first message header (in the length)', offset: 3 },
  { name: 'inside an XLogData header', offset: FRAME + 12 },
  { name: 'inside an XLogData payload', offset: FRAME + 30 + 5000 },
  { name: 'inside an XLogData payload, with a TCP reset', offset: 2 * FRAME + 30 + 70_000, mode: 'reset' },
  { name: 'between two messages', offset: 2 * FRAME },
  { name: 'exactly at a segment boundary (after the last message of segment 1)', offset: 8 * FRAME },
  { name: 'one byte into the message after a segment boundary', offset: 8 * FRAME + 1 },
];

describe('connection cut inside COPY', () => {
  it.each(CUT_POINTS)('$name: reconnects, stores all WAL unchanged', async ({ offset, mode }) => {
    let firstCopyStart = 0;
    const server = await startServer('happy', HAPPY, {
      script: onFirstConnection((session) => ({
        async onStream(request) {
          firstCopyStart = session.connection.bytesSent;
          session.cutAtByte(firstCopyStart + offset, mode ?? 'end');
          await session.stream(request);
        },
      })),
    });
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { endLsn: FLUSH_LSN - 1n });
    expect(run.error).toBeUndefined();
    expect(run.timedOut).toBe(false);
    const disconnected = disconnections(run);
    expect(disconnected.length).toBeGreaterThanOrEqual(1);
    for (const event of disconnected) expect(isCodedWalError(event.error)).toBe(true);
    // The second stream starts at the segment start of what was stored, never later.
    const received = receivedWalBytes(offset);
    const restart = startReplications(server)[1]!;
    const restartLsn = BigInt(`0x${/ 0\/([0-9A-F]+) /.exec(restart)![1]}`);
    expect(restartLsn).toBeLessThanOrEqual(SEGMENT + BigInt(received));
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', lsn: FLUSH_LSN });
    expectAllStored(directory, server);
  });

  it.each(CUT_POINTS.slice(2, 7))(
    '$name, with --no-loop: coded error, stored WAL intact',
    async ({ offset, mode }) => {
      const server = await startServer('happy', HAPPY, {
        script: (session: Session) =>
          session.serveDefault({
            async onStream(request) {
              session.cutAtByte(session.connection.bytesSent + offset, mode ?? 'end');
              await session.stream(request);
            },
          }),
      });
      const { directory } = makeTarget();
      const run = await receiveInto(server, directory, { noLoop: true });
      expect(isCodedWalError(run.error)).toBe(true);
      expect((run.error as { retryable: boolean }).retryable).toBe(true);
      const report = checkDirectory(directory, server);
      expect(report.problems).toEqual([]);
      // A reset discards what the client's socket had not read yet: nothing to expect stored then.
      if (mode === 'reset') return;
      // Everything that arrived whole before the cut is stored (the partial holds at least it).
      const wholeMessages = Math.floor(offset / FRAME);
      const storedEnd = report.segments.reduce(
        (end, segment) =>
          segment.partial
            ? Math.max(end, Number(segment.segmentNumber - 1n) * MEGABYTE + segment.dataLength)
            : Math.max(end, Number(segment.segmentNumber) * MEGABYTE),
        0,
      );
      expect(storedEnd).toBeGreaterThanOrEqual(wholeMessages * 128 * 1024 - 64);
    },
  );
});

describe('connection cut during startup and authentication', () => {
  // After connection 1 streamed a little and was cut, connection 2 is cut at `byte` of its output
  // (inside the SCRAM exchange or the welcome), connection 3 is served normally.
  it.each([
    { name: 'inside AuthenticationSASL', byte: 7 },
    { name: 'inside AuthenticationSASLContinue', byte: 40 },
    { name: 'inside the ParameterStatus messages', byte: 200 },
  ])('$name: the failed reconnect is retried, then streaming continues', async ({ byte }) => {
    let authenticationCut = 0;
    const server = await startServer('happy', HAPPY, {
      auth: { method: 'scram-sha-256', password: 'secret' },
      script: async (session: Session) => {
        if (session.connectionIndex === 1) {
          await session.serveDefault({
            async onStream(request) {
              session.cutAtByte(session.connection.bytesSent + FRAME + 100);
              await session.stream(request);
            },
          });
          return;
        }
        if (session.connectionIndex === 2) {
          authenticationCut = byte;
          session.cutAtByte(byte);
        }
        await session.serveDefault();
      },
    });
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, {
      connect: connectTo(server, { password: 'secret' }),
      endLsn: FLUSH_LSN - 1n,
    });
    expect(authenticationCut).toBe(byte);
    expect(run.error).toBeUndefined();
    const disconnected = disconnections(run);
    expect(disconnected).toHaveLength(2);
    for (const event of disconnected) expect(isCodedWalError(event.error)).toBe(true);
    expect(server.connectionCount).toBe(3);
    expectAllStored(directory, server);
  });

  it('a cut during authentication of the first connection is a coded error (no retry, like pg_receivewal)', async () => {
    const server = await startServer(
      'cut-at',
      { ...HAPPY, byte: '7' },
      { auth: { method: 'scram-sha-256', password: 'secret' } },
    );
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { connect: connectTo(server, { password: 'secret' }) });
    expect(isCodedWalError(run.error)).toBe(true);
    expect(server.connectionCount).toBe(1);
  });

  it('ready scenario cut-at (byte 4096 of connection 1): reconnects and completes', async () => {
    const server = await startServer('cut-at', HAPPY);
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { endLsn: FLUSH_LSN - 1n });
    expect(run.error).toBeUndefined();
    expect(disconnections(run).length).toBeGreaterThanOrEqual(1);
    expectAllStored(directory, server);
  });
});
