import { WalError } from '@wal/protocol';
import { describe, expect, it } from 'vitest';
import { boundConnect } from './command-guard.js';
import { receiveWal } from './receive-wal.js';
import { FakeConnection, FakeReplicationStream, MemorySink } from './testing/index.js';
import type { ReceiveEvent } from './types.js';

/** A server that never answers START_REPLICATION; destroying the connection fails the command. */
class SilentConnection extends FakeConnection {
  #fail: ((error: unknown) => void) | undefined;

  constructor() {
    super();
    this.onStartReplication = () =>
      new Promise((_resolve, reject) => {
        this.#fail = reject;
      });
  }

  override destroy(): void {
    super.destroy();
    this.#fail?.(new WalError('WAL_ERR_CONNECTION_LOST', 'connection destroyed', { retryable: true }));
  }
}

describe('commands outside COPY are bounded (guardCommands)', () => {
  it('a command without answer fails after receiveTimeoutMs with WAL_ERR_STREAM_RECEIVE_TIMEOUT', async () => {
    const connection = new SilentConnection();
    const events: ReceiveEvent[] = [];
    let error: unknown;
    try {
      for await (const event of receiveWal({
        connect: async () => connection,
        sink: new MemorySink(),
        receiveTimeoutMs: 50,
        noLoop: true,
      })) {
        events.push(event);
      }
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toMatchObject({ code: 'WAL_ERR_STREAM_RECEIVE_TIMEOUT', retryable: true });
    expect((error as Error).message).toBe('no answer from the server to START_REPLICATION within 50 ms');
    expect(connection.destroyed).toBe(true);
    expect(events.map((event) => event.type)).toEqual(['connected', 'streaming-started']);
  });

  it('an abort while a command waits ends the iteration with a stopped event, not an error', async () => {
    const connection = new SilentConnection();
    const stop = new AbortController();
    const events: ReceiveEvent[] = [];
    for await (const event of receiveWal({
      connect: async () => connection,
      sink: new MemorySink(),
      noLoop: true,
      signal: stop.signal,
    })) {
      events.push(event);
      // START_REPLICATION is sent right after 'streaming-started'; stop while it waits.
      if (event.type === 'streaming-started') setTimeout(() => stop.abort(), 10);
    }
    expect(connection.destroyed).toBe(true);
    expect(connection.commands.at(-1)).toBe('START_REPLICATION 0/3000000 TIMELINE 1');
    expect(events.map((event) => event.type)).toEqual(['connected', 'streaming-started', 'stopped']);
    expect(events.at(-1)).toMatchObject({ type: 'stopped', reason: 'aborted', lsn: 0x3000000n });
  });
});

describe('stopping waits for the end of COPY at most receiveTimeoutMs (when below STOP_WAIT_MS)', () => {
  it('a server that never answers our CopyDone does not hold the stop for 10 s', async () => {
    // No answerCopyDone(): the server stays silent after the client's CopyDone.
    const connection = new FakeConnection(() =>
      new FakeReplicationStream().pushWal(0x3000000n, Buffer.alloc(0x100, 1)),
    );
    const sink = new MemorySink();
    const events: ReceiveEvent[] = [];
    for await (const event of receiveWal({
      connect: async () => connection,
      sink,
      endLsn: 0x3000010n,
      receiveTimeoutMs: 50,
    })) {
      events.push(event);
    }
    expect(events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', lsn: 0x3000100n });
    expect(sink.calls.at(-1)).toBe('close');
  }, 3_000);
});

describe('connection attempts are bounded (boundConnect)', () => {
  /** A connect that never completes: the server accepted and says nothing (a stopped postmaster). */
  function stalledConnect() {
    const attempts: AbortSignal[] = [];
    let late: ((connection: FakeConnection) => void) | undefined;
    const connect = (signal: AbortSignal) => {
      attempts.push(signal);
      return new Promise<FakeConnection>((resolve) => {
        late = resolve;
      });
    };
    return { attempts, connect, arrive: (connection: FakeConnection) => late?.(connection) };
  }

  it('an abort while connecting ends the iteration without an error, and aborts the attempt', async () => {
    const stalled = stalledConnect();
    const stop = new AbortController();
    const events: ReceiveEvent[] = [];
    const iteration = (async () => {
      for await (const event of receiveWal({
        connect: stalled.connect,
        sink: new MemorySink(),
        signal: stop.signal,
      })) {
        events.push(event);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stalled.attempts).toHaveLength(1);
    stop.abort();
    await iteration;
    expect(events).toEqual([]);
    expect(stalled.attempts[0]!.aborted).toBe(true);
    // A connection that still arrives is closed at once.
    const late = new FakeConnection();
    stalled.arrive(late);
    await new Promise((resolve) => setImmediate(resolve));
    expect(late.destroyed).toBe(true);
  });

  it('receiveTimeoutMs ends a connection attempt with WAL_ERR_STREAM_RECEIVE_TIMEOUT (retryable)', async () => {
    const stalled = stalledConnect();
    let error: unknown;
    try {
      for await (const _event of receiveWal({
        connect: stalled.connect,
        sink: new MemorySink(),
        receiveTimeoutMs: 30,
      })) {
        // No event: the first connection never completes.
      }
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toMatchObject({ code: 'WAL_ERR_STREAM_RECEIVE_TIMEOUT', retryable: true });
    expect((error as Error).message).toBe('the server did not complete the connection within 30 ms');
    expect(stalled.attempts[0]!.aborted).toBe(true);
  });
});

describe('boundConnect', () => {
  it('does not time out while paused (a password prompt waits for the user), and does once it is not', async () => {
    let paused = true;
    let arrive: ((connection: FakeConnection) => void) | undefined;
    const connecting = boundConnect(
      () =>
        new Promise<FakeConnection>((resolve) => {
          arrive = resolve;
        }),
      { receiveTimeoutMs: 10, signal: undefined, isPaused: () => paused },
    );
    let settled = false;
    connecting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(settled).toBe(false);
    const connection = new FakeConnection();
    arrive?.(connection);
    expect(await connecting).toBe(connection);

    paused = true;
    const second = boundConnect(() => new Promise<FakeConnection>(() => {}), {
      receiveTimeoutMs: 10,
      signal: undefined,
      isPaused: () => paused,
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    paused = false;
    await expect(second).rejects.toMatchObject({ code: 'WAL_ERR_STREAM_RECEIVE_TIMEOUT' });
  });
});

describe('the wait for the result after the server ended COPY is bounded', () => {
  it('a server that sends CopyDone and then nothing: WAL_ERR_STREAM_RECEIVE_TIMEOUT, not a hang', async () => {
    const connection = new FakeConnection(() =>
      new FakeReplicationStream().pushWal(0x3000000n, Buffer.alloc(0x100, 1)).push({ type: 'copy-done' }),
    );
    let error: unknown;
    try {
      for await (const _event of receiveWal({
        connect: async () => connection,
        sink: new MemorySink(),
        receiveTimeoutMs: 50,
        noLoop: true,
      })) {
        // Streams the WAL, then waits for the result.
      }
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toMatchObject({ code: 'WAL_ERR_STREAM_RECEIVE_TIMEOUT', retryable: true });
  }, 3_000);
});
