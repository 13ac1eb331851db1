import { WalError } from '@wal/protocol';
import { describe, expect, it } from 'vitest';
import { StreamError } from './errors.js';
import { receiveWal, receiveWalWithClock } from './receive-wal.js';
import { SlotInvalidatedError } from './slot-invalidation.js';
import { FakeConnection, FakeReplicationStream, ManualClock, MemorySink } from './testing/index.js';
import type { ReceiveEvent, ReceiveWalOptions } from './types.js';

const MiB = 1024 * 1024;

function bytes(length: number, fill: number): Buffer {
  return Buffer.alloc(length, fill);
}

async function collect(iterable: AsyncIterable<ReceiveEvent>): Promise<ReceiveEvent[]> {
  const events: ReceiveEvent[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

async function collectFailure(
  iterable: AsyncIterable<ReceiveEvent>,
): Promise<{ events: ReceiveEvent[]; error: unknown }> {
  const events: ReceiveEvent[] = [];
  try {
    for await (const event of iterable) events.push(event);
  } catch (error) {
    return { events, error };
  }
  throw new Error(
    `expected receiveWal to fail, got events ${JSON.stringify(events.map((event) => event.type))}`,
  );
}

function types(events: ReceiveEvent[]): string[] {
  return events.map((event) => event.type);
}

/** A server with one scripted stream per START_REPLICATION; each answers the client's CopyDone. */
function serverWith(...scripts: ((stream: FakeReplicationStream) => void)[]): FakeConnection {
  let index = 0;
  return new FakeConnection(() => {
    const script = scripts[index++];
    if (script === undefined) throw new Error('unexpected START_REPLICATION');
    const stream = new FakeReplicationStream().answerCopyDone();
    script(stream);
    return stream;
  });
}

function options(connection: FakeConnection, sink: MemorySink, extra: Partial<ReceiveWalOptions> = {}) {
  return { connect: async () => connection, sink, reconnectDelayMs: 0, ...extra } satisfies ReceiveWalOptions;
}

describe('receiveWal: startup and the happy path', () => {
  it('runs the commands in pg_receivewal order, streams from the segment start and stops past endpos', async () => {
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x100, 1)).pushWal(0x3000100n, bytes(0x100, 2));
    });
    const sink = new MemorySink();
    const events = await collect(receiveWal(options(connection, sink, { endLsn: 0x3000150n })));

    expect(connection.commands).toEqual([
      'SHOW data_directory_mode',
      'IDENTIFY_SYSTEM',
      'SHOW wal_segment_size',
      'START_REPLICATION 0/3000000 TIMELINE 1',
    ]);
    expect(sink.prepared).toEqual({
      systemId: connection.identify.systemId,
      segmentSize: 16 * MiB,
      fileMode: 0o600,
    });
    expect(events[0]).toEqual({
      type: 'connected',
      systemId: connection.identify.systemId,
      timeline: 1,
      serverVersion: 170004,
      segmentSize: 16 * MiB,
    });
    expect(events[1]).toEqual({ type: 'streaming-started', lsn: 0x3000000n, timeline: 1 });
    expect(events.at(-1)).toEqual({ type: 'stopped', reason: 'endpos', lsn: 0x3000200n, timeline: 1 });
    expect(sink.contiguous()).toEqual({
      startLsn: 0x3000000n,
      data: Buffer.concat([bytes(0x100, 1), bytes(0x100, 2)]),
    });
    expect(sink.maximumRunning).toBe(1);
    expect(sink.calls.slice(-2)).toEqual(['flush', 'close']);
    expect(connection.closed).toBe(true);

    const stream = connection.streams[0]!;
    // Immediate first status after CopyBothResponse (interval > 0), the last status before CopyDone.
    expect(stream.sent.map((message) => message.type)).toEqual(['status', 'status', 'copy-done']);
    expect(stream.statuses[0]).toMatchObject({
      writeLsn: 0x3000000n,
      flushLsn: 0n,
      applyLsn: 0n,
      replyRequested: false,
    });
    expect(stream.statuses[1]).toMatchObject({
      writeLsn: 0x3000200n,
      flushLsn: 0n,
      applyLsn: 0n,
      replyRequested: false,
    });
  });

  it('passes the group file mode from data_directory_mode 0750 and skips SHOW data_directory_mode before PG 11', async () => {
    const connection = serverWith((stream) => stream.pushWal(0x3000000n, bytes(16, 1)));
    connection.settings.set('data_directory_mode', '0750');
    const sink = new MemorySink();
    await collect(receiveWal(options(connection, sink, { endLsn: 0x3000000n })));
    expect(sink.prepared?.fileMode).toBe(0o640);

    const old = serverWith((stream) => stream.pushWal(0x3000000n, bytes(16, 1)));
    old.serverVersion = 100023;
    const oldSink = new MemorySink();
    await collect(receiveWal(options(old, oldSink, { endLsn: 0x3000000n })));
    expect(old.commands[0]).toBe('IDENTIFY_SYSTEM');
    expect(oldSink.prepared).toEqual({ systemId: old.identify.systemId, segmentSize: 16 * MiB });
  });

  it.each([
    [
      'a server older than 10',
      (c: FakeConnection) => (c.serverVersion = 90624),
      'WAL_ERR_STREAM_SERVER_VERSION',
    ],
    [
      'integer_datetimes off',
      (c: FakeConnection) => c.parameters.set('integer_datetimes', 'off'),
      'WAL_ERR_STREAM_INTEGER_DATETIMES',
    ],
    [
      'integer_datetimes missing',
      (c: FakeConnection) => c.parameters.delete('integer_datetimes'),
      'WAL_ERR_STREAM_INTEGER_DATETIMES',
    ],
    [
      'a database-specific connection',
      (c: FakeConnection) => (c.identify.databaseName = 'postgres'),
      'WAL_ERR_STREAM_DATABASE_SPECIFIC',
    ],
    [
      'an invalid segment size',
      (c: FakeConnection) => c.settings.set('wal_segment_size', '3MB'),
      'WAL_ERR_STREAM_SEGMENT_SIZE',
    ],
    [
      'an unparsable data_directory_mode',
      (c: FakeConnection) => c.settings.set('data_directory_mode', 'rwx'),
      'WAL_ERR_STREAM_DATA_DIRECTORY_MODE',
    ],
  ])('fails at once on %s, even without noLoop', async (_name, change, code) => {
    const connection = serverWith();
    change(connection);
    const { events, error } = await collectFailure(receiveWal(options(connection, new MemorySink())));
    expect(events).toEqual([]);
    expect(error).toBeInstanceOf(StreamError);
    expect((error as StreamError).code).toBe(code);
    expect(connection.closed).toBe(true);
  });

  it("shows a database name's control characters escaped in the message", async () => {
    const connection = serverWith();
    connection.identify.databaseName = 'db\nforged line\u001b[2J';
    const { error } = await collectFailure(receiveWal(options(connection, new MemorySink())));
    expect((error as StreamError).message).toContain('(database "db\\nforged line\\x1b[2J")');
  });

  it('throws the error of a failed first connection without retrying (pg_receivewal exits 1)', async () => {
    let attempts = 0;
    const refused = new WalError('WAL_ERR_CONNECTION_REFUSED', 'connection refused', { retryable: true });
    const { error } = await collectFailure(
      receiveWal({
        connect: async () => {
          attempts++;
          throw refused;
        },
        sink: new MemorySink(),
        reconnectDelayMs: 0,
      }),
    );
    expect(error).toBe(refused);
    expect(attempts).toBe(1);
  });

  it('rejects invalid options with a coded error', () => {
    const sink = new MemorySink();
    const connect = async () => new FakeConnection();
    expect(() => receiveWal({ connect, sink, statusIntervalMs: -1 })).toThrow(/statusIntervalMs/);
    expect(() => receiveWal({ connect, sink, receiveTimeoutMs: 0 })).toThrow(/receiveTimeoutMs/);
    expect(() => receiveWal({ connect, sink, slot: '' })).toThrow(/slot/);
    expect(() => receiveWal({ connect, sink, endLsn: -1n })).toThrow(/endLsn/);
    expect(() => receiveWal({ connect, sink, maxBytesInFlight: 0 })).toThrow(/maxBytesInFlight/);
    expect(() => receiveWal({ connect, sink, maxBytesInFlight: 1.5 })).toThrow(/maxBytesInFlight/);
    try {
      receiveWal({ connect, sink, reconnectDelayMs: Number.NaN });
    } catch (error) {
      expect((error as StreamError).code).toBe('WAL_ERR_STREAM_INVALID_OPTION');
    }
  });
});

describe('receiveWal: start position', () => {
  it('resumes from the sink first', async () => {
    const connection = serverWith((stream) => stream.pushWal(0x5000000n, bytes(8, 1)));
    const sink = new MemorySink();
    sink.resume = { lsn: 0x5000000n, timeline: 1 };
    await collect(receiveWal(options(connection, sink, { endLsn: 0x5000000n, slot: 'archive' })));
    expect(connection.commands).not.toContain('READ_REPLICATION_SLOT archive');
    expect(connection.commands.at(-1)).toBe('START_REPLICATION SLOT "archive" 0/5000000 TIMELINE 1');
  });

  it("uses the slot's restart_lsn on PG >= 15, rounded down to its segment start", async () => {
    const connection = serverWith((stream) => stream.pushWal(0x2000000n, bytes(8, 1)));
    connection.slots.set('archive', { slotType: 'physical', restartLsn: 0x20000c8n, restartTimeline: 1 });
    await collect(receiveWal(options(connection, new MemorySink(), { endLsn: 0x2000000n, slot: 'archive' })));
    expect(connection.commands.slice(-2)).toEqual([
      'READ_REPLICATION_SLOT archive',
      'START_REPLICATION SLOT "archive" 0/2000000 TIMELINE 1',
    ]);
  });

  it('does not use READ_REPLICATION_SLOT before PG 15 and falls back to IDENTIFY_SYSTEM', async () => {
    const connection = serverWith((stream) => stream.pushWal(0x3000000n, bytes(8, 1)));
    connection.serverVersion = 140010;
    connection.slots.set('archive', { slotType: 'physical', restartLsn: 0x20000c8n, restartTimeline: 1 });
    await collect(receiveWal(options(connection, new MemorySink(), { endLsn: 0x3000000n, slot: 'archive' })));
    expect(connection.commands.at(-1)).toBe('START_REPLICATION SLOT "archive" 0/3000000 TIMELINE 1');
  });

  it('falls back to IDENTIFY_SYSTEM when the slot has no restart_lsn', async () => {
    const connection = serverWith((stream) => stream.pushWal(0x3000000n, bytes(8, 1)));
    connection.slots.set('archive', { slotType: 'physical', restartLsn: null, restartTimeline: null });
    await collect(receiveWal(options(connection, new MemorySink(), { endLsn: 0x3000000n, slot: 'archive' })));
    expect(connection.commands.at(-1)).toBe('START_REPLICATION SLOT "archive" 0/3000000 TIMELINE 1');
  });

  it('reports a missing slot (retryable) and a logical slot (fatal)', async () => {
    const missing = serverWith();
    const first = await collectFailure(
      receiveWal(options(missing, new MemorySink(), { slot: 'nosuch', noLoop: true })),
    );
    expect((first.error as StreamError).code).toBe('WAL_ERR_STREAM_SLOT_MISSING');
    expect((first.error as StreamError).retryable).toBe(true);
    expect((first.error as Error).message).toContain('replication slot "nosuch" does not exist');

    const logical = serverWith();
    logical.slots.set('decoder', { slotType: 'logical', restartLsn: 0x100n, restartTimeline: 1 });
    const second = await collectFailure(receiveWal(options(logical, new MemorySink(), { slot: 'decoder' })));
    expect((second.error as StreamError).code).toBe('WAL_ERR_STREAM_SLOT_NOT_PHYSICAL');
  });

  it('fails when the start timeline is newer than the server timeline', async () => {
    const connection = serverWith();
    const sink = new MemorySink();
    sink.resume = { lsn: 0x1000000n, timeline: 3 };
    const { error } = await collectFailure(receiveWal(options(connection, sink, { noLoop: true })));
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_TIMELINE_NOT_PRESENT');
  });

  it('stops before START_REPLICATION when the start point is already past endpos', async () => {
    const connection = serverWith();
    const events = await collect(receiveWal(options(connection, new MemorySink(), { endLsn: 0x2ffffffn })));
    // pg_receivewal prints where it would start, then that it stopped there.
    expect(types(events)).toEqual(['connected', 'streaming-started', 'stopped']);
    expect(events[1]).toEqual({ type: 'streaming-started', lsn: 0x3000000n, timeline: 1 });
    expect(events[2]).toEqual({ type: 'stopped', reason: 'endpos', lsn: 0x3000000n, timeline: 1 });
    expect(connection.commands.some((command) => command.startsWith('START_REPLICATION'))).toBe(false);
  });
});

describe('receiveWal: endpos', () => {
  it('keeps streaming when WAL ends exactly at endpos and stops after the record starting there', async () => {
    const connection = serverWith((stream) => {
      stream
        .pushWal(0x3000000n, bytes(0x100, 1))
        .pushWal(0x3000100n, bytes(0x80, 2))
        .pushWal(0x3000180n, bytes(0x80, 3));
    });
    const sink = new MemorySink();
    const events = await collect(receiveWal(options(connection, sink, { endLsn: 0x3000100n })));
    expect(sink.writes.map((write) => write.startLsn)).toEqual([0x3000000n, 0x3000100n]);
    expect(events.at(-1)).toEqual({ type: 'stopped', reason: 'endpos', lsn: 0x3000180n, timeline: 1 });
  });

  it('drops the rest of a message after a finished segment once past endpos, like ProcessWALDataMsg', async () => {
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(MiB - 0x100, 1)).pushWal(0x30fff00n, bytes(0x200, 2));
    });
    connection.settings.set('wal_segment_size', '1MB');
    const sink = new MemorySink();
    const events = await collect(receiveWal(options(connection, sink, { endLsn: 0x30ffff0n })));
    expect(sink.writes.map((write) => [write.startLsn, write.data.length])).toEqual([
      [0x3000000n, MiB - 0x100],
      [0x30fff00n, 0x100],
    ]);
    expect(events).toContainEqual({ type: 'segment-finished', lsn: 0x3100000n, timeline: 1 });
    expect(events.at(-1)).toEqual({ type: 'stopped', reason: 'endpos', lsn: 0x3100000n, timeline: 1 });
  });

  it('reports every segment finished inside one write', async () => {
    const connection = serverWith((stream) => stream.pushWal(0x3000000n, bytes(2 * MiB + 16, 1)));
    connection.settings.set('wal_segment_size', '1MB');
    const events = await collect(receiveWal(options(connection, new MemorySink(), { endLsn: 0x3200000n })));
    expect(events.filter((event) => event.type === 'segment-finished')).toEqual([
      { type: 'segment-finished', lsn: 0x3100000n, timeline: 1 },
      { type: 'segment-finished', lsn: 0x3200000n, timeline: 1 },
    ]);
  });
});

describe('receiveWal: feedback', () => {
  it('answers a keepalive that asks for a reply even with statusIntervalMs 0, and sends nothing else', async () => {
    const connection = serverWith((stream) => {
      stream
        .pushWal(0x3000000n, bytes(0x40, 1))
        .pushKeepalive(0x3000040n, false)
        .pushKeepalive(0x3000040n, true);
      stream.onSend = (message, server) => {
        // Once the reply came, send WAL past endpos.
        if (message.type === 'status' && server.statuses.length === 1)
          server.pushWal(0x3000040n, bytes(0x40, 2));
      };
      stream.answerCopyDone();
    });
    const sink = new MemorySink();
    await collect(receiveWal(options(connection, sink, { endLsn: 0x3000040n, statusIntervalMs: 0 })));
    const statuses = connection.streams[0]!.statuses;
    expect(statuses).toHaveLength(2);
    expect(statuses[0]).toMatchObject({
      writeLsn: 0x3000040n,
      flushLsn: 0n,
      applyLsn: 0n,
      replyRequested: false,
    });
    // The last one is the final status before CopyDone.
    expect(statuses[1]).toMatchObject({ writeLsn: 0x3000080n, flushLsn: 0n });
  });

  it('answers a keepalive while a sink write is still running, and keeps reading into the next write', async () => {
    const sink = new MemorySink();
    sink.holdWrites = true;
    let repliedWhileWriting = false;
    let runningAfterMoreWal = 0;
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x40, 1)).pushKeepalive(0x3000040n, true);
      stream.onSend = (message, server) => {
        if (message.type === 'status' && server.statuses.length === 1) {
          repliedWhileWriting = sink.heldWrites === 1 && sink.writes.length === 0;
          // The server sends more WAL; the stream hands it to the sink while the first write runs.
          server.pushWal(0x3000040n, bytes(0x40, 2));
          setImmediate(() => {
            runningAfterMoreWal = sink.running;
            sink.holdWrites = false;
            sink.releaseWrite();
            sink.releaseWrite();
          });
        }
      };
      stream.answerCopyDone();
    });
    await collect(receiveWal(options(connection, sink, { endLsn: 0x3000040n, statusIntervalMs: 0 })));
    expect(repliedWhileWriting).toBe(true);
    expect(runningAfterMoreWal).toBe(2);
    expect(sink.maximumRunning).toBe(2);
    expect(sink.contiguous()?.data).toEqual(Buffer.concat([bytes(0x40, 1), bytes(0x40, 2)]));
  });

  it('with a slot reports flush, never ahead of what the sink made durable, and flushes after a reply request', async () => {
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x40, 1));
      stream.onSend = (message, server) => {
        const count = server.statuses.length;
        // 1: the immediate first status; after it, WAL then a keepalive asking for a reply.
        if (message.type === 'status' && count === 1) server.pushKeepalive(0x3000040n, true);
        // 3: the status after the flush the keepalive triggered: end the test.
        if (message.type === 'status' && count === 3) server.pushWal(0x3000040n, bytes(0x40, 2));
      };
      stream.answerCopyDone();
    });
    const sink = new MemorySink();
    sink.resume = { lsn: 0x3000000n, timeline: 1 };
    sink.durableLsn = 0x3000000n;
    await collect(receiveWal(options(connection, sink, { endLsn: 0x3000040n, slot: 'archive' })));
    const statuses = connection.streams[0]!.statuses;
    expect(statuses.map((status) => [status.writeLsn, status.flushLsn])).toEqual([
      [0x3000000n, 0x3000000n],
      [0x3000040n, 0x3000000n], // the immediate reply: received, not yet durable
      [0x3000040n, 0x3000040n], // after sink.flush()
      [0x3000080n, 0x3000080n], // the last status, after the final flush
    ]);
    expect(sink.calls.filter((call) => call === 'flush')).toHaveLength(2);
  });

  it('without a slot or synchronous mode reports flush 0, even when the sink is durable', async () => {
    const connection = serverWith((stream) => {
      stream
        .pushWal(0x3000000n, bytes(0x40, 1))
        .pushKeepalive(0x3000040n, true)
        .pushWal(0x3000040n, bytes(0x40, 1));
    });
    const sink = new MemorySink();
    sink.durableLsn = 0x3000000n;
    await collect(receiveWal(options(connection, sink, { endLsn: 0x3000040n })));
    const statuses = connection.streams[0]!.statuses;
    expect(statuses.length).toBeGreaterThanOrEqual(3);
    for (const status of statuses) {
      expect(status.flushLsn).toBe(0n);
      expect(status.applyLsn).toBe(0n);
      expect(status.replyRequested).toBe(false);
    }
  });

  it('in synchronous mode flushes after writes and reports flush == write at once', async () => {
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x40, 1));
      stream.onSend = (message, server) => {
        if (message.type === 'status' && server.statuses.length === 1)
          server.pushWal(0x3000040n, bytes(0x40, 2));
      };
      stream.answerCopyDone();
    });
    const sink = new MemorySink();
    await collect(
      receiveWal(options(connection, sink, { endLsn: 0x3000040n, synchronous: true, statusIntervalMs: 0 })),
    );
    const statuses = connection.streams[0]!.statuses;
    expect(statuses[0]).toMatchObject({ writeLsn: 0x3000040n, flushLsn: 0x3000040n });
    expect(statuses.at(-1)).toMatchObject({ writeLsn: 0x3000080n, flushLsn: 0x3000080n });
    expect(sink.calls.filter((call) => call !== 'prepare')).toEqual([
      'write',
      'flush',
      'write',
      'flush',
      'close',
    ]);
  });

  it('pings at half the receive timeout and gives up at the timeout (simulated clock)', async () => {
    const clock = new ManualClock();
    const connection = serverWith((stream) => {
      stream.simulatedClock = clock;
      stream.pushWal(0x3000000n, bytes(0x40, 1));
    });
    const { error } = await collectFailure(
      receiveWalWithClock(
        options(connection, new MemorySink(), { statusIntervalMs: 0, receiveTimeoutMs: 4000, noLoop: true }),
        clock,
      ),
    );
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_RECEIVE_TIMEOUT');
    expect((error as StreamError).retryable).toBe(true);
    const statuses = connection.streams[0]!.statuses;
    expect(statuses).toHaveLength(1);
    expect(statuses[0]).toMatchObject({ writeLsn: 0x3000040n, replyRequested: true });
  });

  it('sends status updates on the pg_receivewal schedule (simulated clock)', async () => {
    const clock = new ManualClock();
    const start = clock.now;
    const sentAt: number[] = [];
    const connection = serverWith((stream) => {
      stream.simulatedClock = clock;
      stream.onSend = (message) => {
        if (message.type !== 'status') return;
        sentAt.push(clock.now - start);
        if (sentAt.length === 3) stream.pushWal(0x3000000n, bytes(8, 1));
      };
      stream.answerCopyDone();
    });
    await collect(
      receiveWalWithClock(
        options(connection, new MemorySink(), { statusIntervalMs: 1000, endLsn: 0x2ffffffn + 1n }),
        clock,
      ),
    );
    // First at once; then the 1 s floor (target last + 999 ms is less than a second away).
    expect(sentAt.slice(0, 3)).toEqual([0, 1000, 2000]);
  });
});

describe('receiveWal: errors and reconnects', () => {
  it('rejects WAL that does not start where the previous message ended', async () => {
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x40, 1)).pushWal(0x3000080n, bytes(0x40, 2));
    });
    const sink = new MemorySink();
    const { error } = await collectFailure(receiveWal(options(connection, sink, { noLoop: true })));
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_UNEXPECTED_POSITION');
    expect((error as Error).message).toContain('got WAL data at 0/3000080, expected 0/3000040');
    expect(sink.calls.at(-1)).toBe('close');
    expect(connection.closed).toBe(true);
  });

  it('rejects WAL whose server WAL end lies before its start, storing nothing of it (retryable)', async () => {
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x40, 1)).pushWal(0x3000040n, bytes(0x40, 2), 0x3000000n);
    });
    const sink = new MemorySink();
    const { error } = await collectFailure(receiveWal(options(connection, sink, { noLoop: true })));
    expect(error).toBeInstanceOf(StreamError);
    expect(error).toMatchObject({ code: 'WAL_ERR_STREAM_INVALID_WAL_END', retryable: true });
    expect((error as Error).message).toContain('got WAL data at 0/3000040 whose server WAL end 0/3000000');
    expect(sink.writes.map((write) => write.startLsn)).toEqual([0x3000000n]);
  });

  it('reconnects after a lost connection and resumes from the stored position', async () => {
    const lost = new WalError('WAL_ERR_CONNECTION_LOST', 'server closed the connection unexpectedly', {
      retryable: true,
    });
    const first = serverWith((stream) => stream.pushWal(0x3000000n, bytes(0x40, 1)).pushError(lost));
    const second = serverWith((stream) => stream.pushWal(0x3000000n, bytes(0x80, 1)));
    const connections = [first, second];
    const sink = new MemorySink();
    const events = await collect(
      receiveWal({
        connect: async () => connections.shift()!,
        sink,
        endLsn: 0x3000040n,
        reconnectDelayMs: 0,
      }),
    );
    expect(types(events)).toEqual([
      'connected',
      'streaming-started',
      'disconnected',
      'connected',
      'streaming-started',
      'progress',
      'stopping',
      'progress',
      'stopped',
    ]);
    expect(events[2]).toEqual({ type: 'disconnected', error: lost, retryInMs: 0 });
    expect(events[6]).toEqual({ type: 'stopping', reason: 'endpos', lsn: 0x3000080n, timeline: 1 });
    expect(first.closed).toBe(true);
    expect(second.commands.at(-1)).toBe('START_REPLICATION 0/3000000 TIMELINE 1');
  });

  it('treats the end of COPY without a stop point as retryable termination (server shutdown)', async () => {
    const connection = serverWith((stream) => {
      stream
        .pushWal(0x3000000n, bytes(0x40, 1))
        .pushKeepalive(0x3000040n, true)
        .pushEnd({
          commandTags: ['COPY 0'],
          serverClosed: true,
        });
    });
    const { error } = await collectFailure(
      receiveWal(options(connection, new MemorySink(), { noLoop: true })),
    );
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_TERMINATED');
    expect((error as Error).message).toContain('replication stream was terminated before stop point');
    // The shutdown keepalive was answered before.
    expect(connection.streams[0]!.statuses.at(-1)).toMatchObject({ writeLsn: 0x3000040n });
  });

  it('stops with advice when the server no longer has the WAL (58P01)', async () => {
    const removed = Object.assign(
      new WalError(
        'WAL_ERR_SERVER',
        'ERROR:  requested WAL segment 000000010000000000000003 has already been removed',
      ),
      { sqlState: '58P01' },
    );
    const connection = serverWith((stream) => stream.pushError(removed));
    const { events, error } = await collectFailure(receiveWal(options(connection, new MemorySink())));
    expect(types(events)).toEqual(['connected', 'streaming-started']);
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_WAL_REMOVED');
    expect((error as Error).message).toMatch(/has already been removed.*replication slot/s);
    expect((error as Error).cause).toBe(removed);
  });

  it('stops at once when the slot has been invalidated (PostgreSQL 18, 55000), naming why and the gap', async () => {
    // ReplicationSlotAcquire's error in PostgreSQL 18 (slot.c), as a ServerError carries it.
    const invalidated = Object.assign(
      new WalError('WAL_ERR_SERVER', 'ERROR:  can no longer access replication slot "archive"'),
      { sqlState: '55000', detail: 'This replication slot has been invalidated due to "idle_timeout".' },
    );
    const lost = new WalError('WAL_ERR_CONNECTION_LOST', 'lost', { retryable: true });
    let starts = 0;
    const connection = new FakeConnection(() => {
      starts++;
      if (starts === 1)
        return new FakeReplicationStream().pushWal(0x3000000n, bytes(0x100, 1)).pushError(lost);
      throw invalidated;
    });
    connection.slots.set('archive', { slotType: 'physical', restartLsn: 0x3000000n, restartTimeline: 1 });
    const { events, error } = await collectFailure(
      receiveWal(options(connection, new MemorySink(), { slot: 'archive' })),
    );
    // One reconnect after the lost connection, none after the invalidated slot.
    expect(types(events).filter((type) => type === 'disconnected')).toHaveLength(1);
    expect(starts).toBe(2);
    expect(error).toBeInstanceOf(SlotInvalidatedError);
    const failure = error as SlotInvalidatedError;
    expect(failure.code).toBe('WAL_ERR_STREAM_SLOT_INVALIDATED');
    expect(failure.retryable).toBe(false);
    expect(failure.slot).toBe('archive');
    expect(failure.invalidationReason).toBe('idle_timeout');
    expect(failure.gapStartLsn).toBe(0x3000000n);
    expect(failure.message).toContain('"archive" has been invalidated (reason "idle_timeout"');
    expect(failure.message).toContain('idle_replication_slot_timeout');
    expect(failure.message).toContain('The archive has no WAL from 0/3000000 on');
    expect(failure.cause).toBe(invalidated);
  });

  it('says nothing was received when the slot is invalidated before the first byte (max_slot_wal_keep_size)', async () => {
    const invalidated = Object.assign(
      new WalError('WAL_ERR_SERVER', 'ERROR:  can no longer access replication slot "archive"'),
      { sqlState: '55000', detail: 'This replication slot has been invalidated due to "wal_removed".' },
    );
    const connection = new FakeConnection(() => {
      throw invalidated;
    });
    connection.slots.set('archive', { slotType: 'physical', restartLsn: null, restartTimeline: null });
    const { error } = await collectFailure(
      receiveWal(options(connection, new MemorySink(), { slot: 'archive' })),
    );
    expect((error as SlotInvalidatedError).invalidationReason).toBe('wal_removed');
    expect((error as Error).message).toContain('max_slot_wal_keep_size');
    expect((error as Error).message).toContain(
      'Nothing was received yet; streaming would have started at 0/3000000',
    );
  });

  it('on PostgreSQL 15-17 turns 58P01 through a slot without restart_lsn into the invalidated-slot error', async () => {
    const removed = Object.assign(
      new WalError(
        'WAL_ERR_SERVER',
        'ERROR:  requested WAL segment 000000010000000000000003 has already been removed',
      ),
      { sqlState: '58P01' },
    );
    for (const restartLsn of [null, 0x5000000n]) {
      const streaming = serverWith((stream) => stream.pushError(removed));
      streaming.slots.set('archive', { slotType: 'physical', restartLsn: 0x3000000n, restartTimeline: 1 });
      // The second connection only answers READ_REPLICATION_SLOT, after max_slot_wal_keep_size struck.
      const asked = new FakeConnection();
      asked.slots.set('archive', { slotType: 'physical', restartLsn, restartTimeline: null });
      const connections = [streaming, asked];
      const { error } = await collectFailure(
        receiveWal({
          connect: async () => connections.shift()!,
          sink: new MemorySink(),
          slot: 'archive',
          reconnectDelayMs: 0,
        }),
      );
      expect(asked.commands).toEqual(['READ_REPLICATION_SLOT archive']);
      expect(asked.closed).toBe(true);
      if (restartLsn === null) {
        expect(error).toBeInstanceOf(SlotInvalidatedError);
        expect((error as SlotInvalidatedError).invalidationReason).toBeUndefined();
        expect((error as SlotInvalidatedError).gapStartLsn).toBe(0x3000000n);
        expect((error as Error).message).toContain('max_slot_wal_keep_size');
        expect((error as Error).message).toContain(
          'Nothing was received yet; streaming would have started at 0/3000000',
        );
        expect((error as Error).cause).toBe(removed);
      } else {
        expect((error as StreamError).code).toBe('WAL_ERR_STREAM_WAL_REMOVED');
      }
    }
  });

  it('keeps other 55000 errors of START_REPLICATION as they are', async () => {
    const logical = Object.assign(
      new WalError(
        'WAL_ERR_SERVER',
        'ERROR:  cannot use a logical replication slot for physical replication',
      ),
      { sqlState: '55000' },
    );
    const connection = new FakeConnection(() => {
      throw logical;
    });
    connection.slots.set('archive', { slotType: 'physical', restartLsn: null, restartTimeline: null });
    const { error } = await collectFailure(
      receiveWal(options(connection, new MemorySink(), { slot: 'archive', noLoop: true })),
    );
    expect(error).toBe(logical);
  });

  it('fails when the system identifier or the segment size changes between connections', async () => {
    for (const change of [
      (c: FakeConnection) => (c.identify.systemId = 42n),
      (c: FakeConnection) => c.settings.set('wal_segment_size', '32MB'),
    ]) {
      const lost = new WalError('WAL_ERR_CONNECTION_LOST', 'lost', { retryable: true });
      const first = serverWith((stream) => stream.pushError(lost));
      const second = serverWith();
      change(second);
      const connections = [first, second];
      const { events, error } = await collectFailure(
        receiveWal({
          connect: async () => connections.shift()!,
          sink: new MemorySink(),
          reconnectDelayMs: 0,
        }),
      );
      expect(types(events)).toContain('disconnected');
      expect(['WAL_ERR_STREAM_SYSTEM_ID_CHANGED', 'WAL_ERR_STREAM_SEGMENT_SIZE_CHANGED']).toContain(
        (error as StreamError).code,
      );
      expect((error as StreamError).retryable).toBe(false);
    }
  });

  it('throws instead of reconnecting with noLoop', async () => {
    const lost = new WalError('WAL_ERR_CONNECTION_LOST', 'lost', { retryable: true });
    const connection = serverWith((stream) => stream.pushError(lost));
    const { error } = await collectFailure(
      receiveWal(options(connection, new MemorySink(), { noLoop: true })),
    );
    expect(error).toBe(lost);
  });

  it('stops on an authentication failure when reconnecting', async () => {
    const lost = new WalError('WAL_ERR_CONNECTION_LOST', 'lost', { retryable: true });
    const denied = new WalError('WAL_ERR_AUTH_FAILED', 'password authentication failed for user "archiver"');
    let attempt = 0;
    const { events, error } = await collectFailure(
      receiveWal({
        connect: async () => {
          if (attempt++ === 0) return serverWith((stream) => stream.pushError(lost));
          throw denied;
        },
        sink: new MemorySink(),
        reconnectDelayMs: 0,
      }),
    );
    expect(types(events).filter((type) => type === 'disconnected')).toHaveLength(1);
    expect(error).toBe(denied);
  });

  it('treats a history file write error as an error (pg_receivewal ignores it)', async () => {
    const connection = serverWith();
    connection.identify.timeline = 2;
    connection.histories.set(2, { fileName: '00000002.history', content: Buffer.from('1\t0/3000000\tx\n') });
    const sink = new MemorySink();
    sink.resume = { lsn: 0x3000000n, timeline: 2 };
    sink.failHistory = new WalError('WAL_ERR_SINK_DISK_FULL', 'no space left on device', { retryable: true });
    const { error } = await collectFailure(receiveWal(options(connection, sink, { noLoop: true })));
    expect(error).toBe(sink.failHistory);
  });

  it('rejects history content that is no history file, before writing it (fatal)', async () => {
    const connection = serverWith();
    connection.identify.timeline = 2;
    connection.histories.set(2, { fileName: '00000002.history', content: Buffer.from([0, 1, 2, 0xff, 10]) });
    const sink = new MemorySink();
    sink.resume = { lsn: 0x3000000n, timeline: 2 };
    const { events, error } = await collectFailure(receiveWal(options(connection, sink)));
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_HISTORY_FILE_CONTENT');
    expect(types(events)).not.toContain('disconnected');
    expect(sink.historyFiles.size).toBe(0);
  });

  it('rejects a history file with an unexpected name', async () => {
    const connection = serverWith();
    connection.identify.timeline = 2;
    connection.histories.set(2, { fileName: '00000003.history', content: Buffer.from('') });
    const sink = new MemorySink();
    sink.resume = { lsn: 0x3000000n, timeline: 2 };
    const { error } = await collectFailure(receiveWal(options(connection, sink)));
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_HISTORY_FILE_NAME');
    expect(sink.historyFiles.size).toBe(0);
  });
});

describe('receiveWal: timelines', () => {
  it('follows the end of a timeline: CopyDone, TIMELINE_HISTORY, restart on the new timeline at the segment start', async () => {
    const history = Buffer.from('1\t0/B00130\tno recovery target specified\n');
    const connection = serverWith(
      (stream) => {
        stream.pushWal(0xb00000n, bytes(0x130, 1)).push({ type: 'copy-done' });
        // The server answers our CopyDone with the next timeline.
        stream.onSend = (message, server) => {
          if (message.type === 'copy-done')
            server.pushEnd({ nextTimeline: { timeline: 2, startLsn: 0xb00130n } });
        };
      },
      (stream) => stream.pushWal(0xb00000n, bytes(0x200, 2)),
    );
    connection.settings.set('wal_segment_size', '1MB');
    connection.identify.timeline = 2;
    connection.histories.set(2, { fileName: '00000002.history', content: history });
    const sink = new MemorySink();
    sink.resume = { lsn: 0xb00000n, timeline: 1 };
    const events = await collect(receiveWal(options(connection, sink, { endLsn: 0xb00150n })));

    expect(connection.commands.slice(3)).toEqual([
      'START_REPLICATION 0/B00000 TIMELINE 1',
      'TIMELINE_HISTORY 2',
      'START_REPLICATION 0/B00000 TIMELINE 2',
    ]);
    expect(sink.historyFiles.get(2)).toEqual(history);
    expect(events).toContainEqual({ type: 'timeline-switched', timeline: 2, lsn: 0xb00130n });
    // Streaming started once, on this connection: pg_receivewal says it once per StreamLog.
    expect(events.filter((event) => event.type === 'streaming-started')).toEqual([
      { type: 'streaming-started', lsn: 0xb00000n, timeline: 1 },
    ]);
    expect(events.at(-1)).toEqual({ type: 'stopped', reason: 'endpos', lsn: 0xb00200n, timeline: 2 });
    expect(sink.writes.map((write) => [write.timeline, write.startLsn])).toEqual([
      [1, 0xb00000n],
      [2, 0xb00000n],
    ]);
    // The old timeline's segment is closed before CopyDone goes out.
    expect(connection.streams[0]!.sent.at(-1)).toEqual({ type: 'copy-done' });
    expect(sink.calls.filter((call) => call === 'close')).toHaveLength(2);
    expect(sink.closeReason).toBe('end');
  });

  it('moves on when START_REPLICATION lands exactly at a timeline end (no COPY), without looping', async () => {
    const connection = new FakeConnection((request) => {
      if (request.timeline === 1) {
        return {
          kind: 'no-copy',
          result: {
            nextTimeline: { timeline: 2, startLsn: 0xc00000n },
            commandTags: [],
            serverClosed: false,
          },
        };
      }
      return new FakeReplicationStream().answerCopyDone().pushWal(0xc00000n, bytes(0x10, 1));
    });
    connection.settings.set('wal_segment_size', '1MB');
    connection.identify.timeline = 2;
    connection.histories.set(2, { fileName: '00000002.history', content: Buffer.from('1\t0/C00000\tx\n') });
    const sink = new MemorySink();
    sink.resume = { lsn: 0xc00000n, timeline: 1 };
    const events = await collect(receiveWal(options(connection, sink, { endLsn: 0xc00000n })));
    expect(connection.commands.filter((command) => command.startsWith('START_REPLICATION'))).toEqual([
      'START_REPLICATION 0/C00000 TIMELINE 1',
      'START_REPLICATION 0/C00000 TIMELINE 2',
    ]);
    expect(events.at(-1)).toEqual({ type: 'stopped', reason: 'endpos', lsn: 0xc00010n, timeline: 2 });
  });

  it('fails on a no-COPY answer without a next timeline', async () => {
    const connection = new FakeConnection(() => ({
      kind: 'no-copy',
      result: { commandTags: ['START_REPLICATION'], serverClosed: false },
    }));
    const { error } = await collectFailure(
      receiveWal(options(connection, new MemorySink(), { noLoop: true })),
    );
    expect((error as StreamError).code).toBe('WAL_ERR_STREAM_TERMINATED');
  });

  it('rejects a next timeline that is not newer, or that starts after the stop point', async () => {
    for (const nextTimeline of [
      { timeline: 1, startLsn: 0xb00100n },
      { timeline: 2, startLsn: 0xb00200n },
    ]) {
      const connection = serverWith((stream) => {
        stream.pushWal(0xb00000n, bytes(0x130, 1)).push({ type: 'copy-done' });
        stream.onSend = (message, server) => {
          if (message.type === 'copy-done') server.pushEnd({ nextTimeline });
        };
      });
      connection.settings.set('wal_segment_size', '1MB');
      const sink = new MemorySink();
      sink.resume = { lsn: 0xb00000n, timeline: 1 };
      const { error } = await collectFailure(receiveWal(options(connection, sink, { noLoop: true })));
      expect((error as StreamError).code).toBe('WAL_ERR_STREAM_UNEXPECTED_TIMELINE');
    }
  });
});

describe('receiveWal: stopping', () => {
  it('stops cleanly on abort: final status, CopyDone, sink closed, connection closed', async () => {
    const controller = new AbortController();
    const connection = serverWith((stream) => {
      stream.pushWal(0x3000000n, bytes(0x40, 1));
    });
    const sink = new MemorySink();
    sink.resume = { lsn: 0x3000000n, timeline: 1 };
    sink.durableLsn = 0x3000000n;
    const events: ReceiveEvent[] = [];
    for await (const event of receiveWal(
      options(connection, sink, { signal: controller.signal, slot: 'archive' }),
    )) {
      events.push(event);
      if (event.type === 'progress' && events.filter((e) => e.type === 'progress').length === 1) {
        setImmediate(() => controller.abort());
      }
    }
    expect(events.at(-1)).toEqual({ type: 'stopped', reason: 'aborted', lsn: 0x3000040n, timeline: 1 });
    const sent = connection.streams[0]!.sent;
    expect(sent.at(-1)).toEqual({ type: 'copy-done' });
    expect(sent.at(-2)).toMatchObject({ type: 'status', writeLsn: 0x3000040n, flushLsn: 0x3000040n });
    expect(sink.calls.slice(-2)).toEqual(['flush', 'close']);
    expect(connection.closed).toBe(true);
  });

  it('reports the position the progress throttle held back once the stream is idle', async () => {
    const controller = new AbortController();
    const connection = serverWith((stream) => stream.pushWal(0x3000000n, bytes(0x40, 1)));
    const progress: bigint[] = [];
    for await (const event of receiveWal(
      options(connection, new MemorySink(), { signal: controller.signal, statusIntervalMs: 0 }),
    )) {
      if (event.type !== 'progress') continue;
      progress.push(event.receivedLsn);
      // More WAL right after the first progress: its write falls inside the throttle interval.
      if (progress.length === 1) connection.streams[0]!.pushWal(0x3000040n, bytes(0x40, 2));
      if (event.receivedLsn === 0x3000080n) controller.abort();
    }
    // After the first write (throttle open), then when idle; the last one comes from the stop.
    expect(progress).toEqual([0x3000040n, 0x3000080n, 0x3000080n]);
  });

  it('holds the idle report back until the progress throttle allows it (simulated clock)', async () => {
    const clock = new ManualClock();
    const start = clock.now;
    const controller = new AbortController();
    const connection = serverWith((stream) => {
      stream.simulatedClock = clock;
      stream.pushWal(0x3000000n, bytes(0x40, 1));
    });
    const progress: [number, bigint][] = [];
    for await (const event of receiveWalWithClock(
      options(connection, new MemorySink(), { signal: controller.signal, statusIntervalMs: 0 }),
      clock,
    )) {
      if (event.type !== 'progress') continue;
      progress.push([clock.now - start, event.receivedLsn]);
      if (progress.length === 1) connection.streams[0]!.pushWal(0x3000040n, bytes(0x40, 2));
      if (event.receivedLsn === 0x3000080n) controller.abort();
    }
    // The second write is done at once, but idle is reported only when the 500 ms throttle opens.
    expect(progress).toEqual([
      [0, 0x3000040n],
      [500, 0x3000080n],
      [500, 0x3000080n],
    ]);
  });

  it('closes the sink and the connection when the consumer breaks out of the loop', async () => {
    const sink = new MemorySink();
    const connection = serverWith((stream) => stream.pushWal(0x3000000n, bytes(0x40, 1)));
    for await (const event of receiveWal(options(connection, sink))) {
      if (event.type === 'progress') break;
    }
    expect(sink.calls.at(-1)).toBe('close');
    // Not a normal end of COPY: a sink reports no kept .partial (pg_receivewal's error path).
    expect(sink.closeReason).toBe('failure');
    expect(connection.closed).toBe(true);
  });

  it('ends at once when aborted before connecting', async () => {
    const controller = new AbortController();
    controller.abort();
    const connection = serverWith();
    const events = await collect(
      receiveWal(options(connection, new MemorySink(), { signal: controller.signal })),
    );
    expect(events).toEqual([]);
  });
});
