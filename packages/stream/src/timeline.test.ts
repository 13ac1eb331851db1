import { describe, expect, it } from 'vitest';
import { StreamError } from './errors.js';
import { FakeConnection, MemorySink } from './testing/index.js';
import { checkHistoryContent, checkNextTimeline, ensureHistoryFile } from './timeline.js';

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

describe('checkHistoryContent (readTimeLineHistory rules)', () => {
  it('accepts what PostgreSQL writes: one line per ancestor, blank and comment lines', () => {
    expect(() =>
      checkHistoryContent(2, Buffer.from('1\t0/B00130\tno recovery target specified\n')),
    ).not.toThrow();
    expect(() =>
      checkHistoryContent(4, Buffer.from('# comment\n1\t0/3000158\tx\n\n  \n3\t1/A0\tbefore 2000-01-01\n')),
    ).not.toThrow();
    // A switch point without a reason, and no final newline, as sscanf reads it.
    expect(() => checkHistoryContent(2, Buffer.from('1\t0/3000000'))).not.toThrow();
  });

  it.each([
    ['binary content', Buffer.from([0, 1, 2, 0xff, 0xfe, 10]), /NUL byte/],
    ['no entry at all', Buffer.from('\n# nothing\n'), /names no parent timeline/],
    ['a line without a switch point', Buffer.from('1\n'), /line 1 is not/],
    ['a line that is no timeline', Buffer.from('one\t0/3000000\n'), /line 1 is not/],
    ['a bad switch point', Buffer.from('1\t0/XYZ\n'), /line 1 is not/],
    [
      'timelines out of order',
      Buffer.from('2\t0/1\tx\n1\t0/2\tx\n'),
      /line 2: timeline IDs must be in increasing sequence/,
    ],
    [
      'an entry not older than the file',
      Buffer.from('1\t0/1\tx\n3\t0/2\tx\n'),
      /timeline 3 is not older than timeline 3/,
    ],
  ])('refuses %s', (_name, content, message) => {
    expect(() => checkHistoryContent(3, content)).toThrow(StreamError);
    expect(() => checkHistoryContent(3, content)).toThrow(message);
    try {
      checkHistoryContent(3, content);
    } catch (error) {
      expect(error).toMatchObject({ code: 'WAL_ERR_STREAM_HISTORY_FILE_CONTENT', retryable: false });
    }
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
