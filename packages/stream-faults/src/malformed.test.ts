import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReceiveEvent } from '@wal/stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  countedConnect,
  disconnections,
  HAPPY,
  isCodedWalError,
  MEGABYTE,
  makeTarget,
  receiveInto,
  segmentName,
  startServer,
  strayFiles,
} from './harness.js';

afterEach(cleanUp);

/**
 * Every malformed scenario of the fake walsender, the code the receiver must fail with, whether a
 * retry may help (a garbled stream: yes; a server that is not PostgreSQL: no), and how much WAL the
 * server sent correctly before misbehaving (it must be stored, unchanged).
 */
const CASES: { variant: string; code: string; retryable: boolean; goodBytes: number }[] = [
  { variant: 'keepalive-short', code: 'WAL_ERR_PROTOCOL_MESSAGE_LENGTH', retryable: true, goodBytes: 0 },
  { variant: 'keepalive-long', code: 'WAL_ERR_PROTOCOL_MESSAGE_LENGTH', retryable: true, goodBytes: 0 },
  { variant: 'xlogdata-short', code: 'WAL_ERR_PROTOCOL_MESSAGE_LENGTH', retryable: true, goodBytes: 0 },
  {
    variant: 'unknown-copydata-type',
    code: 'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
    retryable: true,
    goodBytes: 0,
  },
  { variant: 'unknown-message', code: 'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE', retryable: true, goodBytes: 0 },
  { variant: 'truncated-header', code: 'WAL_ERR_CONNECTION_LOST', retryable: true, goodBytes: 0 },
  { variant: 'truncated-message', code: 'WAL_ERR_CONNECTION_LOST', retryable: true, goodBytes: 0 },
  { variant: 'absurd-length', code: 'WAL_ERR_PROTOCOL_FRAME_TOO_LONG', retryable: true, goodBytes: 0 },
  {
    variant: 'negative-length',
    code: 'WAL_ERR_PROTOCOL_INVALID_FRAME_LENGTH',
    retryable: true,
    goodBytes: 0,
  },
  {
    variant: 'data-start-ahead',
    code: 'WAL_ERR_STREAM_UNEXPECTED_POSITION',
    retryable: true,
    goodBytes: 8192,
  },
  {
    variant: 'data-start-back',
    code: 'WAL_ERR_STREAM_UNEXPECTED_POSITION',
    retryable: true,
    goodBytes: 16384,
  },
  {
    variant: 'wal-end-before-data-start',
    code: 'WAL_ERR_STREAM_INVALID_WAL_END',
    retryable: true,
    goodBytes: 0,
  },
  {
    variant: 'history-path-traversal',
    code: 'WAL_ERR_STREAM_HISTORY_FILE_NAME',
    retryable: false,
    goodBytes: 0,
  },
  {
    variant: 'history-not-history',
    code: 'WAL_ERR_STREAM_HISTORY_FILE_CONTENT',
    retryable: false,
    goodBytes: 0,
  },
];

/** The first `length` bytes of segment 1 (timeline 1) are stored exactly as the server sent them. */
function expectStoredPrefix(
  directory: string,
  server: Awaited<ReturnType<typeof startServer>>,
  length: number,
) {
  if (length === 0) return;
  const stored = readFileSync(join(directory, segmentName(1, 1n, MEGABYTE, true)));
  const sent = server.model.timeline(1)!.generator.segmentBytes(1n).subarray(0, length);
  expect(stored.subarray(0, length).equals(sent)).toBe(true);
}

describe('malformed server output', () => {
  it.each(CASES)(
    '$variant: $code with --no-loop, stored WAL intact, nothing outside the directory',
    async (entry) => {
      const server = await startServer(`malformed-${entry.variant}`, HAPPY);
      const { root, directory } = makeTarget();
      const run = await receiveInto(server, directory, { noLoop: true });
      expect(run.timedOut).toBe(false);
      expect(isCodedWalError(run.error)).toBe(true);
      expect(run.error).toMatchObject({ code: entry.code });
      expect(checkDirectory(directory, server).problems).toEqual([]);
      expect(strayFiles(root)).toEqual([]);
      expectStoredPrefix(directory, server, entry.goodBytes);
    },
  );

  it.each(CASES)('$variant: retried only when a retry can help', async (entry) => {
    const server = await startServer(`malformed-${entry.variant}`, HAPPY);
    const { root, directory } = makeTarget();
    const disconnects: ReceiveEvent[] = [];
    const run = await receiveInto(
      server,
      directory,
      { reconnectDelayMs: 1 },
      {
        onEvent(event) {
          if (event.type !== 'disconnected') return undefined;
          disconnects.push(event);
          return disconnects.length === 2 ? 'stop' : undefined;
        },
      },
    );
    expect(run.timedOut).toBe(false);
    if (entry.retryable) {
      expect(run.error).toBeUndefined();
      for (const event of disconnects) expect(event).toMatchObject({ error: { code: entry.code } });
    } else {
      expect(disconnects).toEqual([]);
      expect(run.error).toMatchObject({ code: entry.code });
    }
    expect(checkDirectory(directory, server).problems).toEqual([]);
    expect(strayFiles(root)).toEqual([]);
    expectStoredPrefix(directory, server, entry.goodBytes);
  });

  it('history file name with ../: nothing is written, inside or outside the directory', async () => {
    const server = await startServer('malformed-history-path-traversal', HAPPY);
    const { root, directory } = makeTarget();
    await receiveInto(server, directory, { noLoop: true });
    expect(strayFiles(root)).toEqual([]);
    expect(checkDirectory(directory, server).histories).toEqual([]);
  });

  it('system identifier changing between connections: fatal WAL_ERR_STREAM_SYSTEM_ID_CHANGED, first WAL kept', async () => {
    const server = await startServer('malformed-system-id-changes', HAPPY);
    const { directory } = makeTarget();
    const counted = countedConnect(server);
    const run = await receiveInto(server, directory, { connect: counted.connect });
    expect(isCodedWalError(run.error)).toBe(true);
    expect(run.error).toMatchObject({ code: 'WAL_ERR_STREAM_SYSTEM_ID_CHANGED' });
    expect((run.error as Error).message).toMatch(
      /system identifier changed from 7710807530998405100 to 7710807530998405101/,
    );
    expect(disconnections(run)).toHaveLength(1);
    expect(counted.attempts).toBe(2);
    // Connection 1's page is stored and was not overwritten by the other system's WAL.
    expect(checkDirectory(directory, server).problems).toEqual([]);
    expectStoredPrefix(directory, server, 8192);
  });
});
