import { describe, expect, it } from 'vitest';
import { StreamError } from './errors.js';
import { FakeConnection, MemorySink } from './testing/index.js';
import { checkNextTimeline, ensureHistoryFile } from './timeline.js';

describe('ensureHistoryFile', () => {
  it('never fetches a history for timeline 1, nor one the sink has', async () => {
    const connection = new FakeConnection();
    const sink = new MemorySink();
    sink.historyFiles.set(2, Buffer.from('x'));
    expect(await ensureHistoryFile(connection, sink, 1)).toBe(false);
    expect(await ensureHistoryFile(connection, sink, 2)).toBe(false);
    expect(connection.commands).toEqual([]);
  });

  it('fetches and stores a missing history file as the server sent it', async () => {
    const connection = new FakeConnection();
    const content = Buffer.from('1\t0/B00130\tno recovery target specified\n');
    connection.histories.set(3, { fileName: '00000003.history', content });
    const sink = new MemorySink();
    expect(await ensureHistoryFile(connection, sink, 3)).toBe(true);
    expect(connection.commands).toEqual(['TIMELINE_HISTORY 3']);
    expect(sink.historyFiles.get(3)).toBe(content);
  });

  it('rejects an unexpected file name without writing', async () => {
    const connection = new FakeConnection();
    connection.histories.set(10, { fileName: '0000000a.history', content: Buffer.from('') });
    const sink = new MemorySink();
    await expect(ensureHistoryFile(connection, sink, 10)).rejects.toMatchObject({
      code: 'WAL_ERR_STREAM_HISTORY_FILE_NAME',
    });
    expect(sink.historyFiles.size).toBe(0);
  });
});

describe('checkNextTimeline', () => {
  it('accepts a newer timeline starting at or before the stop point', () => {
    expect(() =>
      checkNextTimeline({ timeline: 1, stopLsn: 0xb00130n }, { timeline: 2, startLsn: 0xb00130n }),
    ).not.toThrow();
    expect(() =>
      checkNextTimeline({ timeline: 1, stopLsn: 0xb00200n }, { timeline: 3, startLsn: 0xb00130n }),
    ).not.toThrow();
  });

  it('rejects a timeline that is not newer, or that begins after the stop point', () => {
    expect(() =>
      checkNextTimeline({ timeline: 2, stopLsn: 0xb00130n }, { timeline: 2, startLsn: 0xb00130n }),
    ).toThrow('server reported unexpected next timeline 2, following timeline 2');
    expect(() =>
      checkNextTimeline({ timeline: 1, stopLsn: 0xb00100n }, { timeline: 2, startLsn: 0xb00130n }),
    ).toThrow(StreamError);
    expect(() =>
      checkNextTimeline({ timeline: 1, stopLsn: 0xb00100n }, { timeline: 2, startLsn: 0xb00130n }),
    ).toThrow(
      'server stopped streaming timeline 1 at 0/B00100, but reported next timeline 2 to begin at 0/B00130',
    );
  });
});
