import type { WalSink } from '@wal/stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  directorySink,
  expectOneKeepaliveAnswer,
  FLUSH_LSN,
  HAPPY,
  makeTarget,
  receiveInto,
  SEGMENT,
  startServer,
  statusUpdates,
  waitUntil,
} from './harness.js';

afterEach(cleanUp);

/**
 * keepalive-reply (spec §3.4 "Keepalive handling", §5.6 scenario 2): after the WAL the server sends
 * k(replyRequested=0), then k(replyRequested=1) and waits for an 'r'. With -s 0 the receiver sends no
 * status of its own, so every 'r' before we stop answers the keepalive.
 */
describe('keepalive asking for a reply', () => {
  it('is answered with -s 0: one r, write = everything received, flush = 0 without a slot, apply = 0', async () => {
    const server = await startServer('keepalive-reply', HAPPY);
    const { directory } = makeTarget();
    const stop = new AbortController();
    let answered: ReturnType<typeof statusUpdates> = [];
    const running = receiveInto(server, directory, { statusIntervalMs: 0, signal: stop.signal });
    await waitUntil(() => statusUpdates(server).length > 0, "the client's status update");
    answered = statusUpdates(server);
    stop.abort();
    const run = await running;

    expect(run.error).toBeUndefined();
    expect(run.timedOut).toBe(false);
    expectOneKeepaliveAnswer(answered);
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'aborted' });
    expect(checkDirectory(directory, server).problems).toEqual([]);
    expect(server.errors).toEqual([]);
  });

  it('is answered at once while the sink is still writing the WAL before it', async () => {
    const server = await startServer('keepalive-reply', HAPPY);
    const { directory } = makeTarget();
    const inner = directorySink(directory);
    let lastWriteStartedBeforeReply: boolean | undefined;
    // The write that ends at the flush position (the last WAL before the keepalives) does not finish
    // until the server has the reply: the receiver must answer while that write is running.
    const gated: WalSink = {
      prepare: (info) => inner.prepare(info),
      resumePoint: () => inner.resumePoint(),
      hasHistoryFile: (timeline) => inner.hasHistoryFile(timeline),
      writeHistoryFile: (timeline, content) => inner.writeHistoryFile(timeline, content),
      async write(timeline, startLsn, data) {
        const last = startLsn + BigInt(data.length) === FLUSH_LSN;
        if (last) lastWriteStartedBeforeReply = statusUpdates(server).length === 0;
        // A slow disk: every write takes a while.
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (last) {
          await waitUntil(() => statusUpdates(server).length > 0, 'the reply while the sink is busy');
        }
        return inner.write(timeline, startLsn, data);
      },
      flush: () => inner.flush(),
      close: () => inner.close(),
      get durableLsn() {
        return inner.durableLsn;
      },
    };
    const stop = new AbortController();
    const running = receiveInto(server, directory, { sink: gated, statusIntervalMs: 0, signal: stop.signal });
    await waitUntil(() => statusUpdates(server).length > 0, "the client's status update");
    const answered = statusUpdates(server);
    stop.abort();
    const run = await running;

    expect(run.error).toBeUndefined();
    expect(lastWriteStartedBeforeReply).toBe(true);
    expect(answered).toHaveLength(1);
    // Received, not yet written: the write position is what arrived.
    expect(answered[0]).toMatchObject({ writeLsn: FLUSH_LSN, flushLsn: 0n });
    expect(checkDirectory(directory, server).problems).toEqual([]);
    expect(server.errors).toEqual([]);
  });

  it('with a slot: replies at once, then reports the flush position once the sink made it durable', async () => {
    const server = await startServer('keepalive-reply', HAPPY, {
      server: { slots: { archive: { restartLsn: SEGMENT } } },
    });
    const { directory } = makeTarget();
    const stop = new AbortController();
    const running = receiveInto(server, directory, {
      sink: directorySink(directory, true),
      slot: 'archive',
      statusIntervalMs: 0,
      signal: stop.signal,
    });
    await waitUntil(
      () => statusUpdates(server).some((status) => status.flushLsn === FLUSH_LSN),
      'a status update reporting the flush position',
    );
    const updates = statusUpdates(server);
    stop.abort();
    const run = await running;

    expect(run.error).toBeUndefined();
    const first = updates[0]!;
    expect(first.writeLsn).toBe(FLUSH_LSN);
    // Never a flush position ahead of the write position, never one ahead of what is stored.
    for (const status of updates) expect(status.flushLsn).toBeLessThanOrEqual(status.writeLsn);
    expect(updates.at(-1)).toMatchObject({ writeLsn: FLUSH_LSN, flushLsn: FLUSH_LSN, applyLsn: 0n });
    expect(
      server.recorded.some(
        (entry) => entry.message.type === 'Query' && /SLOT "archive"/.test(entry.message.sql),
      ),
    ).toBe(true);
    expect(checkDirectory(directory, server).problems).toEqual([]);
    expect(server.errors).toEqual([]);
  });

  it('with a status interval, the first status goes out right after CopyBothResponse', async () => {
    const server = await startServer('keepalive-reply', HAPPY);
    const { directory } = makeTarget();
    const stop = new AbortController();
    const running = receiveInto(server, directory, { statusIntervalMs: 60_000, signal: stop.signal });
    // The periodic one (sent at the start, write = start of segment 1) and the keepalive's reply.
    await waitUntil(() => statusUpdates(server).some((status) => status.writeLsn === FLUSH_LSN), 'the reply');
    const updates = statusUpdates(server);
    stop.abort();
    expect((await running).error).toBeUndefined();
    expect(updates[0]!.writeLsn).toBe(SEGMENT);
    expect(updates.filter((status) => status.writeLsn === FLUSH_LSN)).toHaveLength(1);
    expect(server.errors).toEqual([]);
  });
});
