import { describe, expect, it } from 'vitest';
import { StreamError } from './errors.js';
import { chooseStartPosition } from './start-position.js';
import { FakeConnection, MemorySink } from './testing/index.js';

function choose(connection: FakeConnection, slot: string) {
  return chooseStartPosition({
    connection,
    sink: new MemorySink(),
    identify: connection.identify,
    segmentSize: 16 * 1024 * 1024,
    slot,
  });
}

describe('chooseStartPosition: slot errors carry the slot, and their messages name no flag', () => {
  it('a missing slot', async () => {
    const error = (await choose(new FakeConnection(), 'gone').catch(
      (caught: unknown) => caught,
    )) as StreamError;
    expect(error).toBeInstanceOf(StreamError);
    expect(error).toMatchObject({ code: 'WAL_ERR_STREAM_SLOT_MISSING', slot: 'gone', retryable: true });
    expect(error.message).toBe('replication slot "gone" does not exist; create it or fix the slot name.');
  });

  it('a logical slot', async () => {
    const connection = new FakeConnection();
    connection.slots.set('decoder', { slotType: 'logical', restartLsn: 0x3000000n, restartTimeline: 1 });
    const error = (await choose(connection, 'decoder').catch((caught: unknown) => caught)) as StreamError;
    expect(error).toMatchObject({
      code: 'WAL_ERR_STREAM_SLOT_NOT_PHYSICAL',
      slot: 'decoder',
      retryable: false,
    });
    expect(error.message).not.toMatch(/--/);
  });
});
