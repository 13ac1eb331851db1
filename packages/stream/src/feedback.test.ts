import { describe, expect, it } from 'vitest';
import {
  buildStatusUpdate,
  ReceiveDeadline,
  reportedFlushLsn,
  SINK_HOLD_STATUS_INTERVAL_MS,
  SinkHoldFeedback,
  StatusSchedule,
} from './feedback.js';

describe('StatusSchedule (pg_receivewal HandleCopyStream timing)', () => {
  it('is due at once before any status, so the first one follows CopyBothResponse', () => {
    expect(new StatusSchedule(10_000).isDue(0)).toBe(true);
    expect(new StatusSchedule(10_000).isDue(123_456)).toBe(true);
  });

  it('is never due with interval 0, and then has no timer', () => {
    const schedule = new StatusSchedule(0);
    expect(schedule.isDue(1e12)).toBe(false);
    expect(schedule.sleepMs(0)).toBeUndefined();
  });

  it('counts the interval from the last status of any kind', () => {
    const schedule = new StatusSchedule(10_000);
    schedule.markSent(1000);
    expect(schedule.isDue(10_999)).toBe(false);
    expect(schedule.isDue(11_000)).toBe(true);
    schedule.markSent(5000); // a keepalive reply restarts the interval
    expect(schedule.isDue(11_000)).toBe(false);
  });

  it('sleeps until last + interval - 1 ms, but never less than one second', () => {
    const schedule = new StatusSchedule(10_000);
    schedule.markSent(0);
    expect(schedule.sleepMs(0)).toBe(9999);
    expect(schedule.sleepMs(4000.5)).toBe(5998);
    expect(schedule.sleepMs(8999)).toBe(1000);
    expect(schedule.sleepMs(9500)).toBe(1000);
    expect(schedule.sleepMs(20_000)).toBe(1000);
    const fast = new StatusSchedule(1000);
    fast.markSent(0);
    expect(fast.sleepMs(0)).toBe(1000);
  });
});

describe('ReceiveDeadline (walreceiver ping/terminate)', () => {
  it('does nothing without a timeout', () => {
    const deadline = new ReceiveDeadline(undefined, 0);
    expect(deadline.check(1e9)).toBe('ok');
    expect(deadline.sleepMs(0)).toBeUndefined();
  });

  it('pings once at half the timeout, then times out; a message resets both', () => {
    const deadline = new ReceiveDeadline(4000, 0);
    expect(deadline.sleepMs(0)).toBe(2000);
    expect(deadline.check(1999)).toBe('ok');
    expect(deadline.check(2000)).toBe('ping');
    deadline.pinged();
    expect(deadline.check(3000)).toBe('ok');
    expect(deadline.sleepMs(3000)).toBe(1000);
    expect(deadline.check(4000)).toBe('timeout');
    deadline.received(4000);
    expect(deadline.check(5999)).toBe('ok');
    expect(deadline.check(6000)).toBe('ping');
  });
});

describe('reportedFlushLsn', () => {
  const positions = { receivedLsn: 0x3000200n, durableLsn: 0x3000100n, streamStartLsn: 0x3000000n };

  it('is 0 without a slot or synchronous mode', () => {
    expect(reportedFlushLsn(false, positions)).toBe(0n);
  });

  it('is what the sink made durable, never more, and never past what was received', () => {
    expect(reportedFlushLsn(true, positions)).toBe(0x3000100n);
    expect(reportedFlushLsn(true, { ...positions, durableLsn: 0x3000200n })).toBe(0x3000200n);
    expect(reportedFlushLsn(true, { ...positions, durableLsn: 0x9000000n })).toBe(0x3000200n);
  });

  it('is 0 while nothing of this stream is durable, so a slot is not moved back', () => {
    expect(reportedFlushLsn(true, { ...positions, durableLsn: 0x2ffffffn })).toBe(0n);
    expect(reportedFlushLsn(true, { ...positions, durableLsn: 0x3000000n })).toBe(0x3000000n);
  });
});

describe('buildStatusUpdate', () => {
  it('fills write, flush, apply 0, replyRequested and a PostgreSQL-epoch timestamp', () => {
    // 2000-01-01T00:00:01.5Z is 1.5 s after the PostgreSQL epoch.
    const unixMs = Date.UTC(2000, 0, 1, 0, 0, 1, 500);
    expect(
      buildStatusUpdate(true, { receivedLsn: 0x200n, durableLsn: 0x100n, streamStartLsn: 0n }, unixMs),
    ).toEqual({
      writeLsn: 0x200n,
      flushLsn: 0x100n,
      applyLsn: 0n,
      sendTime: 1_500_000n,
      replyRequested: false,
    });
    const ping = buildStatusUpdate(
      false,
      { receivedLsn: 0x200n, durableLsn: 0x100n, streamStartLsn: 0n },
      unixMs,
      true,
    );
    expect(ping.replyRequested).toBe(true);
    expect(ping.flushLsn).toBe(0n);
    // A known pair: 2026-01-01T00:00:00Z = 9497 days (26 years, 7 leap days) = 820 540 800 s after 2000-01-01.
    expect(
      buildStatusUpdate(false, { receivedLsn: 0n, durableLsn: 0n, streamStartLsn: 0n }, Date.UTC(2026, 0, 1))
        .sendTime,
    ).toBe(820_540_800_000_000n);
  });
});

describe('SinkHoldFeedback (statuses while the sink holds the stream)', () => {
  it('asks for nothing while the sink does not hold reading, nor in the first second of a hold', () => {
    const hold = new SinkHoldFeedback();
    hold.update(false, 0);
    expect(hold.sleepMs(0, Number.NEGATIVE_INFINITY)).toBeUndefined();
    expect(hold.isDue(0, Number.NEGATIVE_INFINITY)).toBe(false);
    hold.update(true, 100);
    expect(hold.isDue(500, Number.NEGATIVE_INFINITY)).toBe(false);
    expect(hold.sleepMs(500, Number.NEGATIVE_INFINITY)).toBe(600);
    // A hold that ends early changes nothing on the wire.
    hold.update(false, 900);
    expect(hold.isDue(1200, Number.NEGATIVE_INFINITY)).toBe(false);
  });

  it('sends a status every interval while the hold lasts, counted from the last status of any kind', () => {
    const hold = new SinkHoldFeedback();
    hold.update(true, 0);
    hold.update(true, 700);
    expect(hold.isDue(SINK_HOLD_STATUS_INTERVAL_MS, 0)).toBe(true);
    // A status just went out (at 1000): the next one a whole interval later, whatever -s says.
    expect(hold.isDue(1500, 1000)).toBe(false);
    expect(hold.sleepMs(1500, 1000)).toBe(500);
    expect(hold.isDue(2000, 1000)).toBe(true);
  });
});
