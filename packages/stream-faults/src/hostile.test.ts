import { getDefaultHighWaterMark } from 'node:stream';
import { neverAnswering, type Script } from '@wal/fake-walsender';
import type { Connection } from '@wal/libpq-lite';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanUp,
  connectTo,
  disconnections,
  HAPPY,
  makeTarget,
  onFirstConnection,
  receiveInto,
  SEGMENT,
  shutDownFirstConnectionAt,
  startServer,
  waitUntil,
} from './harness.js';

afterEach(cleanUp);

const KIB = 1024;

/**
 * A hostile server (issue 11): keepalives asking for a reply, as fast as it can send them, while it
 * never reads a byte of what the receiver sends. Without backpressure every reply queues in the
 * receiver's memory (about 1 GB in 20 s); the receiver must instead hold one reply, stop reading,
 * and let TCP flow control stall the server.
 */
describe('a server that floods keepalives asking for a reply and never reads', () => {
  it('keeps the bytes queued for sending small, stalls the server, and stops promptly when aborted', async () => {
    const flood = { sent: 0, blockedSince: undefined as number | undefined };
    const server = await startServer('happy', HAPPY, {
      script: onFirstConnection((session) => ({
        async onStream() {
          await session.floodReplyRequests(flood);
        },
      })),
    });
    const { directory } = makeTarget();
    const connections: Connection[] = [];
    const connectOnce = connectTo(server);
    const stop = new AbortController();
    const running = receiveInto(
      server,
      directory,
      {
        connect: async () => {
          const connection = await connectOnce();
          connections.push(connection);
          return connection;
        },
        signal: stop.signal,
      },
      { limitMs: 80_000 },
    );
    let mostPending = 0;
    // Until the server has been unable to send for a while (its sends wait for us to read), or the
    // receiver has queued far more than a bounded sender ever would.
    await waitUntil(
      () => {
        for (const connection of connections) {
          mostPending = Math.max(mostPending, connection.pendingWriteBytes);
        }
        const since = flood.blockedSince;
        return mostPending > 1024 * KIB || (since !== undefined && Date.now() - since > 1000);
      },
      'the flooding server to stall',
      60_000,
    );
    expect(flood.sent).toBeGreaterThan(1000);
    // The socket's high-water mark (16 KiB on Node.js 20, 64 KiB from 22 on: the last write that
    // still fits below it may cross it) and one status update at most.
    expect(mostPending).toBeLessThanOrEqual(getDefaultHighWaterMark(false) + 1 * KIB);

    stop.abort();
    const run = await running;
    expect(run.timedOut).toBe(false);
    expect(run.error).toBeUndefined();
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'aborted' });
    expect(connections).toHaveLength(1);
    expect(connections[0]!.closed).toBe(true);
  }, 90_000);
});

/** Connection 1 streams until the server shuts down; later ones get no answer to their startup packet. */
function reconnectsStall(stalls: { started: number; closed: number }): Script {
  const first = shutDownFirstConnectionAt(SEGMENT + SEGMENT / 2n);
  return async (session) => {
    if (session.connectionIndex === 1) return first(session);
    await session.acceptStartup();
    stalls.started += 1;
    await session.stall();
    stalls.closed += 1;
  };
}

/** Without connect_timeout: only the receive loop's own bounds can end a stalled attempt. */
function unboundedConnect(server: Parameters<typeof connectTo>[0]) {
  return connectTo(server, { connect_timeout: '0' });
}

describe('a server that stalls', () => {
  it('a reconnect whose startup is never answered: an abort ends the run and closes the socket', async () => {
    const stalls = { started: 0, closed: 0 };
    const server = await startServer('happy', HAPPY, { script: reconnectsStall(stalls) });
    const { directory } = makeTarget();
    const stop = new AbortController();
    const running = receiveInto(server, directory, {
      connect: unboundedConnect(server),
      signal: stop.signal,
    });
    await waitUntil(() => stalls.started > 0, 'the reconnect to stall');
    stop.abort();
    const run = await running;
    expect(run.timedOut).toBe(false);
    expect(run.error).toBeUndefined();
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'aborted' });
    // libpq-lite's connect got the abort and destroyed its socket: the server sees the client leave.
    await waitUntil(() => stalls.closed > 0, 'the stalled connection to close');
  });

  it('a reconnect whose startup is never answered: receiveTimeoutMs ends the attempt, which is retried', async () => {
    const stalls = { started: 0, closed: 0 };
    const server = await startServer('happy', HAPPY, { script: reconnectsStall(stalls) });
    const { directory } = makeTarget();
    const stop = new AbortController();
    const running = receiveInto(server, directory, {
      connect: unboundedConnect(server),
      signal: stop.signal,
      receiveTimeoutMs: 200,
    });
    await waitUntil(() => stalls.started >= 2 && stalls.closed >= 1, 'a second stalled attempt');
    stop.abort();
    const run = await running;
    expect(run.timedOut).toBe(false);
    const errors = disconnections(run).map((event) => event.error);
    expect(errors.slice(1)[0]).toMatchObject({
      code: 'WAL_ERR_STREAM_RECEIVE_TIMEOUT',
      message: 'the server did not complete the connection within 200 ms',
    });
  });

  it('IDENTIFY_SYSTEM never answered: an abort ends the run at once, without an error', async () => {
    const seen = { count: 0 };
    const server = await startServer('happy', HAPPY, { script: neverAnswering('IDENTIFY_SYSTEM', seen) });
    const { directory } = makeTarget();
    const stop = new AbortController();
    const running = receiveInto(server, directory, { signal: stop.signal });
    await waitUntil(() => seen.count > 0, 'IDENTIFY_SYSTEM');
    stop.abort();
    const run = await running;
    expect(run.timedOut).toBe(false);
    expect(run.error).toBeUndefined();
    expect(run.events).toEqual([]);
  });
});
