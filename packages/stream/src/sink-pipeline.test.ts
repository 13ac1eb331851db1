import type { ReadLease } from '@wal/libpq-lite';
import { describe, expect, it } from 'vitest';
import { SinkPipeline } from './sink-pipeline.js';
import { AtOnceMemorySink, MemorySink } from './testing/index.js';

const SEGMENT = 1024 * 1024;
const START = 0x1000000n;

/** Leases as the connection hands them out, one per message read, recording what is released. */
class LeaseLedger {
  next = 0;
  readonly held = new Set<number>();
  readonly released: number[] = [];
  /** The message just read: the next retain() leases it. */
  read(): void {
    this.next++;
  }
  retain(): ReadLease {
    this.held.add(this.next);
    return this.next as ReadLease;
  }
  release(lease?: ReadLease): void {
    if (lease === undefined) return;
    if (!this.held.delete(lease)) throw new Error(`lease ${lease} released twice or never taken`);
    this.released.push(lease);
  }
}

async function turns(count = 10): Promise<void> {
  for (let turn = 0; turn < count; turn++) await new Promise((resolve) => setImmediate(resolve));
}

function setUp(sink: MemorySink, maxBytesInFlight = 4 * SEGMENT) {
  sink.prepared = { systemId: 1n, segmentSize: SEGMENT };
  const leases = new LeaseLedger();
  let wakeUps = 0;
  const pipeline = new SinkPipeline(sink, leases, maxBytesInFlight, () => {
    wakeUps++;
  });
  /** Reads a message and hands its WAL to the pipeline. */
  const write = (lsn: bigint, length: number): boolean => {
    leases.read();
    const startsSegment = lsn % BigInt(SEGMENT) === 0n;
    return pipeline.write(1, lsn, Buffer.alloc(length, Number(lsn % 251n)), startsSegment);
  };
  return { pipeline, leases, write, wakeUps: () => wakeUps };
}

describe('SinkPipeline', () => {
  it('keeps writes in flight and hands them back in the order they were started', async () => {
    const sink = new MemorySink();
    sink.holdWrites = true;
    const { pipeline, leases, write, wakeUps } = setUp(sink);
    expect(write(START, 100)).toBe(false);
    expect(write(START + 100n, 100)).toBe(false);
    expect(write(START + 200n, 100)).toBe(false);
    expect(sink.running).toBe(3);
    expect([...leases.held]).toEqual([1, 2, 3]);

    sink.releaseWrite(1);
    await turns();
    expect(wakeUps()).toBe(1);
    // The second one settled first: nothing is handed back before the first.
    expect(pipeline.settledWaiting).toBe(false);
    expect(pipeline.nextSettled()).toBeUndefined();

    sink.releaseWrite(0);
    await turns();
    expect(pipeline.nextSettled()).toMatchObject({ kind: 'write', startLsn: START, endLsn: START + 100n });
    expect(pipeline.nextSettled()).toMatchObject({ kind: 'write', startLsn: START + 100n });
    expect(pipeline.nextSettled()).toBeUndefined();
    // Each message's memory is released once its write is accounted for, not before.
    expect(leases.released).toEqual([1, 2]);
    expect(pipeline.idle).toBe(false);
    sink.releaseWrite();
    await turns();
    expect(pipeline.nextSettled()).toMatchObject({ startLsn: START + 200n });
    expect(pipeline.idle).toBe(true);
    expect(leases.held.size).toBe(0);
  });

  it('stops accepting at the bound on bytes in flight and accepts again as writes are accounted for', async () => {
    const sink = new MemorySink();
    sink.holdWrites = true;
    const { pipeline, write } = setUp(sink, 300);
    write(START, 100);
    write(START + 100n, 100);
    expect(pipeline.accepting).toBe(true);
    write(START + 200n, 100);
    expect(pipeline.accepting).toBe(false);
    sink.releaseWrite();
    await turns();
    // Settled is not enough: the bytes count until the write is accounted for.
    expect(pipeline.accepting).toBe(false);
    pipeline.nextSettled();
    expect(pipeline.accepting).toBe(true);
  });

  it('holds a segment start until everything before it is accounted for, and never starts it after a failure', async () => {
    const sink = new MemorySink();
    sink.holdWrites = true;
    const { pipeline, leases, write } = setUp(sink);
    const next = START + BigInt(SEGMENT);
    write(next - 100n, 100);
    expect(write(next, 100)).toBe(false);
    expect(sink.calls).toEqual(['write']);
    expect(pipeline.accepting).toBe(false);
    expect(leases.held.has(2)).toBe(true);
    expect(pipeline.startHeld()).toBeUndefined();

    sink.failWrite = new Error('disk full');
    sink.releaseWrite();
    await turns();
    const failed = pipeline.nextSettled();
    expect(failed).toMatchObject({ kind: 'write', failed: true, error: sink.failWrite });
    // The caller stops at the failure; the held segment start was never handed to the sink.
    expect(sink.calls).toEqual(['write']);
  });

  it('starts the held segment start once the pipeline is idle', async () => {
    const sink = new MemorySink();
    sink.holdWrites = true;
    const { pipeline, leases, write } = setUp(sink);
    const next = START + BigInt(SEGMENT);
    write(next - 100n, 100);
    write(next, 100);
    sink.releaseWrite();
    await turns();
    pipeline.nextSettled();
    sink.holdWrites = false;
    // A sink without at-once writes runs it: the lease taken when it was read stays until then.
    expect(pipeline.startHeld()).toBeUndefined();
    expect(sink.calls).toEqual(['write', 'write']);
    expect(pipeline.accepting).toBe(true);
    await turns();
    expect(pipeline.nextSettled()).toMatchObject({ startLsn: next, endLsn: next + 100n });
    expect(leases.released).toEqual([1, 2]);
  });

  it('writes and flushes at once only when nothing runs, and then takes no lease', async () => {
    const sink = new AtOnceMemorySink();
    const { pipeline, leases, write } = setUp(sink);
    // The sink declines the segment start: it runs, and the next message goes behind it.
    expect(write(START, 100)).toBe(false);
    expect(write(START + 100n, 100)).toBe(false);
    expect(pipeline.flush(START + 200n)).toBeUndefined();
    expect(pipeline.flushRunning).toBe(true);
    await turns();
    pipeline.nextSettled();
    pipeline.nextSettled();
    expect(pipeline.nextSettled()).toMatchObject({ kind: 'flush', durableLsn: START + 200n });
    expect(pipeline.flushRunning).toBe(false);
    expect(pipeline.idle).toBe(true);

    expect(write(START + 200n, 100)).toBe(true);
    expect(pipeline.flush(START + 300n)).toBe(START + 300n);
    expect(sink.calls).toEqual(['write', 'write', 'flush', 'write-at-once', 'flush-at-once']);
    expect(leases.held.size).toBe(0);
    expect(leases.released).toEqual([1, 2]);
  });

  it('closes the sink once, after every running call has settled', async () => {
    const sink = new MemorySink();
    sink.holdWrites = true;
    const { pipeline, write } = setUp(sink);
    write(START, 100);
    const running = pipeline.running();
    expect(running).toBeDefined();
    const closed = pipeline.close('end');
    const again = pipeline.close('failure');
    await turns();
    expect(sink.calls).toEqual(['write']);
    sink.releaseWrite();
    await Promise.all([closed, again, running]);
    expect(sink.calls).toEqual(['write', 'close']);
    // The first caller's reason counts.
    expect(sink.closeReason).toBe('end');
    expect(pipeline.running()).toBeUndefined();
  });
});
