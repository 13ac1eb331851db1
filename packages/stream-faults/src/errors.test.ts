import { getScenario, type Session } from '@wal/fake-walsender';
import type { ReceiveEvent } from '@wal/stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  connectTo,
  countedConnect,
  disconnections,
  HAPPY,
  isCodedWalError,
  makeTarget,
  receiveInto,
  startServer,
} from './harness.js';

afterEach(cleanUp);

/** Stops the run after `count` reconnect attempts, checking each error with `check`. */
function stopAfterDisconnects(
  count: number,
  check: (event: Extract<ReceiveEvent, { type: 'disconnected' }>) => void,
) {
  const seen: Extract<ReceiveEvent, { type: 'disconnected' }>[] = [];
  return {
    seen,
    onEvent(event: ReceiveEvent): 'stop' | undefined {
      if (event.type !== 'disconnected') return undefined;
      check(event);
      seen.push(event);
      return seen.length === count ? 'stop' : undefined;
    },
  };
}

describe('58P01: requested WAL segment already removed, inside COPY (spec §3.9)', () => {
  it('stops at once with WAL_ERR_STREAM_WAL_REMOVED and advice to use a slot; no retry', async () => {
    const server = await startServer('error-58P01', HAPPY);
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory);
    expect(isCodedWalError(run.error)).toBe(true);
    expect(run.error).toMatchObject({ code: 'WAL_ERR_STREAM_WAL_REMOVED' });
    const message = (run.error as Error).message;
    expect(message).toMatch(/requested WAL segment 000000010000000000000001 has already been removed/);
    expect(message).toMatch(/Use a replication slot so that the server keeps WAL/);
    expect((run.error as Error).cause).toMatchObject({ sqlState: '58P01' });
    expect(run.events.some((event) => event.type === 'disconnected')).toBe(false);
    expect(server.connectionCount).toBe(1);
    // Nothing was received, so nothing but at most an empty padded .partial may exist.
    expect(checkDirectory(directory, server).problems).toEqual([]);
  });
});

describe('55006: slot active elsewhere', () => {
  it('is retried (server error kept with its SQLSTATE), with a growing delay', async () => {
    const server = await startServer('error-55006', HAPPY);
    const { directory } = makeTarget();
    const stopper = stopAfterDisconnects(3, (event) => {
      expect(event.error).toMatchObject({ code: 'WAL_ERR_SERVER', sqlState: '55006' });
      expect(event.error.message).toMatch(/replication slot "busy" is active for PID 4242/);
    });
    const run = await receiveInto(
      server,
      directory,
      { slot: 'busy', reconnectDelayMs: 5 },
      { onEvent: stopper.onEvent },
    );
    expect(run.error).toBeUndefined();
    expect(stopper.seen.map((event) => event.retryInMs)).toEqual([5, 10, 20]);
    expect(server.connectionCount).toBe(3);
  });

  it('with --no-loop ends with that error', async () => {
    const server = await startServer('error-55006', HAPPY);
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { slot: 'busy', noLoop: true });
    expect(run.error).toMatchObject({ code: 'WAL_ERR_SERVER', sqlState: '55006' });
  });
});

describe('42704: slot missing', () => {
  it('PostgreSQL 15+: READ_REPLICATION_SLOT finds no slot: WAL_ERR_STREAM_SLOT_MISSING, retried', async () => {
    const server = await startServer('error-42704', HAPPY);
    const { directory } = makeTarget();
    const stopper = stopAfterDisconnects(2, (event) =>
      expect(event.error).toMatchObject({ code: 'WAL_ERR_STREAM_SLOT_MISSING' }),
    );
    const run = await receiveInto(
      server,
      directory,
      { slot: 'gone', reconnectDelayMs: 5 },
      { onEvent: stopper.onEvent },
    );
    expect(run.error).toBeUndefined();
    expect((stopper.seen[0]!.error as Error).message).toMatch(
      /replication slot "gone" does not exist; create it/,
    );
  });

  it('PostgreSQL 14: START_REPLICATION refuses with 42704; --no-loop ends with the server error', async () => {
    const server = await startServer('error-42704', { ...HAPPY, version: '14' });
    const { directory } = makeTarget();
    const run = await receiveInto(server, directory, { slot: 'gone', noLoop: true });
    expect(isCodedWalError(run.error)).toBe(true);
    expect(run.error).toMatchObject({ code: 'WAL_ERR_SERVER', sqlState: '42704' });
    expect((run.error as Error).message).toMatch(/replication slot "gone" does not exist/);
  });
});

describe('28P01: wrong password', () => {
  it('first connection: a clear fatal error without the password, no retry', async () => {
    const server = await startServer('error-28P01', HAPPY);
    const { directory } = makeTarget();
    const counted = countedConnect(server, { password: 'hunter2-secret' });
    const run = await receiveInto(server, directory, { connect: counted.connect });
    expect(isCodedWalError(run.error)).toBe(true);
    expect(run.error).toMatchObject({ code: 'WAL_ERR_AUTH_FAILED' });
    expect((run.error as Error).message).toMatch(/password authentication failed for user "postgres"/);
    expect((run.error as Error).message).not.toContain('hunter2');
    // One connect() by the receiver (libpq-lite's own sslmode fallback aside: see the next test).
    expect(counted.attempts).toBe(1);
  });

  /**
   * With sslmode=prefer the server's 'N' to SSLRequest already moves the attempt to plaintext on the
   * same socket (spec §6.2), so like libpq there is no method left after the 28P01: one login only.
   */
  it('libpq-lite sends a wrong password once after an SSL refusal, like libpq', async () => {
    const server = await startServer('error-28P01', HAPPY);
    await connectTo(server, { password: 'wrong' })().catch(() => undefined);
    expect(server.connectionCount).toBe(1);
  });

  it('on a reconnect: fatal too, no further attempts', async () => {
    const refuse = getScenario('error-28P01').run;
    const server = await startServer('happy', HAPPY, {
      auth: { method: 'password', password: 'secret' },
      script: async (session: Session) => {
        if (session.connectionIndex > 1) return refuse(session);
        await session.serveDefault({
          async onStream(request) {
            session.cutAtByte(session.connection.bytesSent + 200_000);
            await session.stream(request);
          },
        });
      },
    });
    const { directory } = makeTarget();
    const counted = countedConnect(server, { password: 'secret' });
    const run = await receiveInto(server, directory, { connect: counted.connect });
    expect(run.error).toMatchObject({ code: 'WAL_ERR_AUTH_FAILED' });
    expect(disconnections(run)).toHaveLength(1);
    expect(counted.attempts).toBe(2);
    expect(checkDirectory(directory, server).problems).toEqual([]);
  });
});
