import { describe, expect, it } from 'vitest';
import { type CopyOutcome, CopyStream, type CopyStreamOptions, systemClock } from './copy-stream.js';
import { AtOnceMemorySink, FakeReplicationStream, MemorySink } from './testing/index.js';
import type { ReceiveEvent } from './types.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SEGMENT = MiB;
const START = 0x1000000n;

function bytes(length: number, fill: number): Buffer {
  return Buffer.alloc(length, fill);
}

/** Lets queued callbacks and I/O run until `condition` holds; fails after many turns instead of hanging. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 1000; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting until ${what}`);
}

/** Runs a CopyStream in the background, recording its events, outcome or error. */
function start(
  stream: FakeReplicationStream,
  sink: MemorySink,
  maxBytesInFlight?: number,
  endLsn?: bigint,
  overrides: Partial<CopyStreamOptions> = {},
) {
  const abort = new AbortController();
  let copy: CopyStream | undefined;
  // What the loop has written, and (once it ended) the sink calls still running.
  const state: { readonly writtenLsn: bigint; pendingDone: Promise<void> | undefined } = {
    get writtenLsn() {
      return copy?.writtenLsn ?? START;
    },
    pendingDone: undefined,
  };
  const events: ReceiveEvent[] = [];
  const run: { outcome?: CopyOutcome; error?: unknown; finished: boolean } = { finished: false };
  const done = (async () => {
    try {
      copy = new CopyStream(stream, {
        sink,
        segmentSize: SEGMENT,
        timeline: 1,
        startLsn: START,
        endLsn,
        statusIntervalMs: 0,
        reportFlush: false,
        synchronous: false,
        receiveTimeoutMs: undefined,
        signal: abort.signal,
        clock: systemClock,
        maxBytesInFlight,
        ...overrides,
      });
      const generator = copy.run();
      for (;;) {
        const next = await generator.next();
        if (next.done) {
          run.outcome = next.value;
          break;
        }
        events.push(next.value);
      }
    } catch (error) {
      run.error = error;
    } finally {
      state.pendingDone = copy?.running();
      run.finished = true;
    }
  })();
  return { abort, state, events, run, done };
}

function finishedSegments(events: ReceiveEvent[]): bigint[] {
  return events.flatMap((event) => (event.type === 'segment-finished' ? [event.lsn] : []));
}

describe('CopyStream: pipelined sink writes', () => {
  it('keeps several writes in flight and accounts for them in the order they were started', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new MemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    sink.holdWrites = true;
    const quarter = SEGMENT / 4;
    // Two segments of four writes each.
    for (let index = 0; index < 8; index++) {
      stream.pushWal(START + BigInt(index * quarter), bytes(quarter, index + 1));
    }
    const run = start(stream, sink);
    // The writes of the first segment run; the start of the second waits until they are written.
    await until(() => sink.running === 4 && stream.unread === 3, 'the first four writes run');

    // The second write finishes first: nothing may be reported before the first one is written.
    sink.releaseWrite(1);
    await until(() => sink.running === 3, 'the second write finished');
    await new Promise((resolve) => setImmediate(resolve));
    expect(run.state.writtenLsn).toBe(START);
    expect(run.events).toEqual([]);

    sink.releaseWrite(0);
    await until(() => run.state.writtenLsn === START + 2n * BigInt(quarter), 'two writes are accounted for');
    sink.releaseWrite();
    sink.releaseWrite();
    await until(() => run.state.writtenLsn === START + BigInt(SEGMENT), 'the first segment is written');
    expect(finishedSegments(run.events)).toEqual([START + BigInt(SEGMENT)]);

    await until(() => sink.running === 4, 'the writes of the second segment run');
    for (let index = 0; index < 4; index++) sink.releaseWrite();
    await until(() => run.state.writtenLsn === START + 2n * BigInt(SEGMENT), 'all WAL is written');
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
    expect(run.run.outcome).toEqual({
      kind: 'stopped',
      reason: 'aborted',
      lsn: START + 2n * BigInt(SEGMENT),
    });
    expect(finishedSegments(run.events)).toEqual([START + BigInt(SEGMENT), START + 2n * BigInt(SEGMENT)]);
    // Abort waited for the writes, then flushed, then closed.
    expect(sink.calls).toEqual([...Array(8).fill('write'), 'flush', 'close']);
    expect(stream.sent.map((message) => message.type)).toEqual(['status', 'copy-done']);
    // One waitForMessage stayed outstanding while the writes finished, instead of one per wake-up.
    expect(stream.waits).toBeLessThanOrEqual(3);
  });

  it('throws a failed write met in order and does not count later writes as written', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new MemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    sink.holdWrites = true;
    const quarter = SEGMENT / 4;
    // The four writes of the first segment, then the start of the second one.
    for (let index = 0; index < 5; index++) {
      stream.pushWal(START + BigInt(index * quarter), bytes(quarter, index + 1));
    }
    const run = start(stream, sink);
    await until(() => sink.running === 4, 'the writes of the first segment run');
    // The start of the next segment waits for them.
    expect(stream.unread).toBe(0);
    expect(sink.calls).toEqual(['write', 'write', 'write', 'write']);

    sink.releaseWrite();
    await until(() => run.state.writtenLsn === START + BigInt(quarter), 'the first write is accounted for');
    const failure = new Error('disk full');
    sink.failWrite = failure;
    sink.releaseWrite();
    await until(() => run.run.finished, 'the copy failed');
    expect(run.run.error).toBe(failure);
    expect(run.state.writtenLsn).toBe(START + BigInt(quarter));
    expect(finishedSegments(run.events)).toEqual([]);

    // The last two writes still run: pendingDone covers them, so the caller closes the sink only after.
    expect(run.state.pendingDone).toBeDefined();
    let settled = false;
    void run.state.pendingDone?.then(() => {
      settled = true;
    });
    sink.failWrite = undefined;
    sink.releaseWrite();
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    sink.releaseWrite();
    await run.state.pendingDone;
    expect(settled).toBe(true);
    expect(run.state.writtenLsn).toBe(START + BigInt(quarter));
    // The next segment was never handed to the sink: no segment behind the failed write.
    expect(sink.calls).toEqual(['write', 'write', 'write', 'write']);
  });

  it('stops reading while the bytes in flight reach the bound, and reads on as writes finish', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new MemorySink();
    sink.holdWrites = true;
    for (let index = 0; index < 5; index++)
      stream.pushWal(START + BigInt(index * 0x100), bytes(0x100, index + 1));
    const run = start(stream, sink, 0x300);
    await until(() => sink.running === 3, 'three writes run');
    // Nothing more is read while 0x300 bytes are unwritten, however long the sink takes.
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(sink.running).toBe(3);
    expect(stream.unread).toBe(2);

    sink.releaseWrite();
    await until(() => stream.unread === 1, 'one more message is read');
    expect(sink.running).toBe(3);

    sink.holdWrites = false;
    for (let index = 0; index < 3; index++) sink.releaseWrite();
    await until(() => run.state.writtenLsn === START + 0x500n, 'all WAL is written');
    expect(stream.unread).toBe(0);
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
    expect(sink.contiguous()?.data).toEqual(Buffer.concat([1, 2, 3, 4, 5].map((fill) => bytes(0x100, fill))));
  });

  it('gives read memory back to the connection only up to the oldest write still running', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new MemorySink();
    sink.holdWrites = true;
    // On the wire each message is 'd', length, then 'w' with its 24-byte header and the WAL.
    const frame = 5 + 25 + 0x100;
    stream.pushWal(START, bytes(0x100, 1)).pushKeepalive(START + 0x100n, false);
    stream.pushWal(START + 0x100n, bytes(0x100, 2)).pushWal(START + 0x200n, bytes(0x100, 3));
    const keepalive = 5 + 18;
    const run = start(stream, sink);
    await until(() => sink.running === 3, 'three writes run');
    expect(stream.releasedPosition).toBe(0);

    sink.releaseWrite(2); // the last one first: the two before still hold their data
    await until(() => sink.running === 2, 'the third write ends');
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(stream.releasedPosition).toBe(0);

    sink.releaseWrite(0);
    await until(() => stream.releasedPosition === frame + keepalive, 'the first message is released');
    sink.releaseWrite(0);
    await until(() => stream.releasedPosition === 3 * frame + keepalive, 'everything read is released');
    expect(stream.position).toBe(3 * frame + keepalive);
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
    // Written as sent, not the 0xEE the fake stream leaves in released memory.
    const written = [...sink.writes].sort((a, b) => Number(a.startLsn - b.startLsn));
    expect(written.map((write) => write.data)).toEqual([1, 2, 3].map((fill) => bytes(0x100, fill)));
  });

  it('reads nothing more once past endpos until the writes before it are done, then drops the rest', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new MemorySink();
    sink.holdWrites = true;
    for (let index = 0; index < 6; index++)
      stream.pushWal(START + BigInt(index * 0x100), bytes(0x100, index + 1));
    // Past endpos after the second message: pg_receivewal would read on and ignore the rest.
    const run = start(stream, sink, undefined, START + 0x180n);
    await until(() => sink.running === 2, 'two writes run');
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(stream.unread).toBe(4);
    expect(stream.sent.filter((message) => message.type === 'copy-done')).toHaveLength(0);

    sink.holdWrites = false;
    sink.releaseWrite();
    sink.releaseWrite();
    await run.done;
    expect(run.run.error).toBeUndefined();
    expect(run.run.outcome).toMatchObject({ kind: 'stopped', reason: 'endpos', lsn: START + 0x200n });
    // After our CopyDone the rest was read to the end of COPY, and its memory released.
    expect(stream.unread).toBe(0);
    expect(stream.releasedPosition).toBe(stream.position);
    expect(sink.contiguous()?.data).toEqual(Buffer.concat([1, 2].map((fill) => bytes(0x100, fill))));
  });

  it('rejects a bound that is not a positive integer', async () => {
    for (const bound of [0, -1, 1.5, Number.NaN]) {
      const stream = new FakeReplicationStream();
      const run = start(stream, new MemorySink(), bound);
      await run.done;
      expect(run.run.error).toMatchObject({ code: 'WAL_ERR_STREAM_INVALID_OPTION' });
    }
  });

  it('answers a keepalive at once while writes are in flight', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new MemorySink();
    sink.holdWrites = true;
    stream.pushWal(START, bytes(0x100, 1)).pushWal(START + 0x100n, bytes(0x100, 2));
    stream.pushKeepalive(START + 0x200n, true);
    const run = start(stream, sink);
    await until(() => stream.statuses.length === 1, 'the keepalive is answered');
    expect(sink.running).toBe(2);
    expect(stream.statuses[0]).toMatchObject({
      writeLsn: START + 0x200n,
      flushLsn: 0n,
      replyRequested: false,
    });

    sink.releaseWrite();
    sink.releaseWrite();
    await until(() => run.state.writtenLsn === START + 0x200n, 'all WAL is written');
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
  });
});

describe('CopyStream: a sink that writes at once (WalSink.writeAtOnce, flushAtOnce)', () => {
  const statuses = (stream: FakeReplicationStream) =>
    stream.sent.filter((message) => message.type === 'status');

  it('writes at once only when none of its calls runs; synchronous: everything buffered, then one flush and one status', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new AtOnceMemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    // The sink declines the segment start (write() then), and the message after it waits behind it:
    // the sink throws if it is asked to write at once while a call runs.
    stream.pushWal(START, bytes(1000, 1)).pushWal(START + 1000n, bytes(1000, 2));
    const run = start(stream, sink, undefined, undefined, { synchronous: true, reportFlush: true });
    await until(
      () => statuses(stream).some((status) => status.flushLsn === START + 2000n),
      'the first WAL is flushed and reported',
    );
    expect(sink.calls).toEqual(['write', 'write', 'flush-at-once']);

    // Idle again: two messages arrive together (as commits do); both are written at once, then one
    // fsync and one status covering both, as pg_receivewal's loop does.
    const before = statuses(stream).length;
    stream.pushWal(START + 2000n, bytes(500, 3)).pushWal(START + 2500n, bytes(500, 4));
    await until(() => statuses(stream).length > before, 'a status after the new WAL');
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.calls.slice(3)).toEqual(['write-at-once', 'write-at-once', 'flush-at-once']);
    expect(statuses(stream).slice(before)).toEqual([
      expect.objectContaining({ writeLsn: START + 3000n, flushLsn: START + 3000n }),
    ]);
    expect(run.state.writtenLsn).toBe(START + 3000n);

    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
    expect(sink.contiguous()).toEqual({
      startLsn: START,
      data: Buffer.concat([bytes(1000, 1), bytes(1000, 2), bytes(500, 3), bytes(500, 4)]),
    });
  });

  it('reports a segment finished by a write done at once, and progress', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new AtOnceMemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    stream.pushWal(START, bytes(1000, 1));
    const run = start(stream, sink);
    await until(() => run.state.writtenLsn === START + 1000n, 'the segment start is written');
    stream.pushWal(START + 1000n, bytes(SEGMENT - 1000, 2));
    await until(() => finishedSegments(run.events).length === 1, 'the segment is reported finished');
    expect(sink.calls).toEqual(['write', 'write-at-once']);
    expect(finishedSegments(run.events)).toEqual([START + BigInt(SEGMENT)]);
    expect(run.events.at(-1)).toEqual(
      expect.objectContaining({ type: 'progress', receivedLsn: START + BigInt(SEGMENT) }),
    );
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
  });

  it('throws a write that failed at once, with nothing after it written, flushed or reported', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new AtOnceMemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    stream.pushWal(START, bytes(1000, 1));
    const run = start(stream, sink, undefined, undefined, { synchronous: true, reportFlush: true });
    await until(() => sink.calls.includes('flush-at-once'), 'the segment start is written and flushed');
    const sentBefore = stream.sent.length;
    sink.failWrite = new Error('disk on fire');
    stream.pushWal(START + 1000n, bytes(1000, 2)).pushWal(START + 2000n, bytes(1000, 3));
    await run.done;
    expect(run.run.error).toBe(sink.failWrite);
    expect(run.state.writtenLsn).toBe(START + 1000n);
    expect(sink.calls).toEqual(['write', 'flush-at-once', 'write-at-once']);
    expect(stream.sent.length).toBe(sentBefore);
  });

  it('reports what was written before a message that fails, then throws', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    const sink = new AtOnceMemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    stream.pushWal(START, bytes(1000, 1));
    const run = start(stream, sink);
    await until(() => run.state.writtenLsn === START + 1000n, 'the segment start is written');
    // In one batch: the rest of the segment (written at once), then WAL at the wrong position.
    stream
      .pushWal(START + 1000n, bytes(SEGMENT - 1000, 2))
      .pushWal(START + 5n * BigInt(SEGMENT), bytes(10, 3));
    await run.done;
    expect(run.run.error).toMatchObject({ code: 'WAL_ERR_STREAM_UNEXPECTED_POSITION' });
    expect(finishedSegments(run.events)).toEqual([START + BigInt(SEGMENT)]);
  });
});

describe('CopyStream: a server that does not read what we send', () => {
  /** A stream whose server stops reading right after the client's first status update. */
  function blockedAfterFirstStatus(): FakeReplicationStream {
    const stream = new FakeReplicationStream().answerCopyDone();
    const previous = stream.onSend;
    stream.onSend = (message, self) => {
      previous?.(message, self);
      if (message.type === 'status' && self.statuses.length === 1) self.blockWrites(true);
    };
    return stream;
  }

  it('reads nothing while blocked (no reply queues), and reads on and answers once the server reads again', async () => {
    const stream = blockedAfterFirstStatus();
    const sink = new MemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    const end = START + 8n * 1024n;
    stream.pushWal(START, bytes(8 * KiB, 1)).pushKeepalive(end, true);
    for (let index = 0; index < 100; index++) stream.pushKeepalive(end, true);
    stream.pushWal(end, bytes(8 * KiB, 2));
    const run = start(stream, sink);
    await until(() => stream.statuses.length === 1, 'the first keepalive is answered');
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(stream.statuses).toHaveLength(1);
    expect(stream.unread).toBe(101);

    stream.blockWrites(false);
    await until(() => run.state.writtenLsn === end + 8n * 1024n, 'the WAL after the flood is written');
    expect(stream.unread).toBe(0);
    expect(stream.statuses).toHaveLength(101);
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
    expect(run.run.outcome).toMatchObject({ kind: 'stopped', reason: 'aborted' });
  });

  it('holds the receive-timeout ping while blocked and times out: the silence of a server that reads nothing counts', async () => {
    const stream = blockedAfterFirstStatus();
    const sink = new MemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    stream.pushWal(START, bytes(8 * KiB, 1)).pushKeepalive(START + 8n * 1024n, true);
    for (let index = 0; index < 10; index++) stream.pushKeepalive(START + 8n * 1024n, true);
    const run = start(stream, sink, undefined, undefined, { receiveTimeoutMs: 50 });
    await run.done;
    expect(run.run.error).toMatchObject({ code: 'WAL_ERR_STREAM_RECEIVE_TIMEOUT', retryable: true });
    expect(stream.statuses).toHaveLength(1);
    expect(stream.unread).toBe(10);
  });

  it('stops at once when aborted while blocked: no CopyDone queued, no wait for the end of COPY', async () => {
    const stream = blockedAfterFirstStatus();
    const sink = new MemorySink();
    sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
    stream.pushWal(START, bytes(8 * KiB, 1)).pushKeepalive(START + 8n * 1024n, true);
    const run = start(stream, sink);
    await until(() => stream.writeBlocked && run.state.writtenLsn === START + 8n * 1024n, 'blocked');
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
    expect(run.run.outcome).toMatchObject({ kind: 'stopped', reason: 'aborted', lsn: START + 8n * 1024n });
    expect(stream.sent.filter((message) => message.type !== 'status')).toEqual([]);
    expect(stream.statuses).toHaveLength(1);
  });

  it('reports progress on a keepalive while idle, at most once per progress interval', async () => {
    const stream = new FakeReplicationStream().answerCopyDone();
    let now = 1000;
    const clock = { monotonic: () => now, wall: () => 0 };
    stream.pushKeepalive(START + 0x80n, false).pushKeepalive(START + 0x90n, false);
    const run = start(stream, new MemorySink(), undefined, undefined, { clock });
    const progress = () => run.events.filter((event) => event.type === 'progress');
    await until(() => progress().length === 1, 'the first keepalive is reported');
    // The second came within the interval: nothing more until the clock moves on.
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(progress()).toEqual([
      { type: 'progress', receivedLsn: START, durableLsn: 0n, serverWalEnd: START + 0x80n },
    ]);
    now += 500;
    stream.pushKeepalive(START + 0xa0n, false);
    await until(() => progress().length === 2, 'a keepalive after the interval is reported');
    expect(progress()[1]).toMatchObject({ serverWalEnd: START + 0xa0n });
    run.abort.abort();
    await run.done;
    expect(run.run.error).toBeUndefined();
  });
});
