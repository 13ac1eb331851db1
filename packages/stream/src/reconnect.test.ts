import { WalError } from '@wal/protocol';
import { describe, expect, it } from 'vitest';
import { StreamError } from './errors.js';
import { classifyError, MAX_RECONNECT_DELAY_MS, ReconnectBackoff } from './reconnect.js';

function serverError(sqlState: string, message = 'server says no'): WalError {
  return Object.assign(new WalError('WAL_ERR_SERVER', `ERROR:  ${message}`), { sqlState });
}

describe('classifyError', () => {
  it.each([
    [
      'wrong password (AuthenticationError)',
      new WalError('WAL_ERR_AUTH_FAILED', 'password authentication failed'),
      false,
    ],
    ['no password available', new WalError('WAL_ERR_AUTH_NO_PASSWORD', 'no password supplied'), false],
    ['wrong password (28P01)', serverError('28P01'), false],
    ['pg_hba rejection (28000)', serverError('28000'), false],
    ['missing REPLICATION privilege (42501)', serverError('42501'), false],
    ['TLS certificate failure', new WalError('WAL_ERR_TLS_CERTIFICATE', 'certificate verify failed'), false],
    ['bad connection string', new WalError('WAL_ERR_CONNINFO', 'invalid connection option'), false],
    ['sink mismatch', new WalError('WAL_ERR_SINK_MISMATCH', 'another system', { retryable: false }), false],
    ['system identifier changed', new StreamError('WAL_ERR_STREAM_SYSTEM_ID_CHANGED', 'changed'), false],
    ['segment size changed', new StreamError('WAL_ERR_STREAM_SEGMENT_SIZE_CHANGED', 'changed'), false],
    ['server version unsupported', new StreamError('WAL_ERR_STREAM_SERVER_VERSION', 'old'), false],
    ['slot active (55006)', serverError('55006', 'replication slot "s" is active for PID 42'), true],
    ['slot missing (42704)', serverError('42704', 'replication slot "s" does not exist'), true],
    ['server shutting down (57P01)', serverError('57P01'), true],
    ['walsender stopping (55000)', serverError('55000'), true],
    ['start point ahead of flush (XX000)', serverError('XX000'), true],
    ['connection lost', new WalError('WAL_ERR_CONNECTION_LOST', 'lost', { retryable: true }), true],
    ['connection refused', new WalError('WAL_ERR_CONNECTION_REFUSED', 'refused', { retryable: true }), true],
    [
      'connection aborted by the caller',
      new WalError('WAL_ERR_CONNECTION_ABORTED', 'aborted', { retryable: false }),
      false,
    ],
    ['garbled message', new WalError('WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE', 'bad'), true],
    [
      'stream terminated (server shutdown)',
      new StreamError('WAL_ERR_STREAM_TERMINATED', 'x', { retryable: true }),
      true,
    ],
    ['disk full', new WalError('WAL_ERR_SINK_DISK_FULL', 'ENOSPC', { retryable: true }), true],
    ['a bug (TypeError)', new TypeError('x is undefined'), false],
    ['not an error at all', 'oops', false],
  ])('%s -> retry %s', (_name, error, retry) => {
    const classification = classifyError(error);
    expect(classification.retry).toBe(retry);
    expect(classification.error).toBe(error);
  });

  it('stops on "WAL segment already removed" (58P01) with advice, keeping the server error as cause', () => {
    const removed = serverError(
      '58P01',
      'requested WAL segment 000000010000000000000004 has already been removed',
    );
    const classification = classifyError(removed);
    expect(classification.retry).toBe(false);
    const error = classification.error as StreamError;
    expect(error).toBeInstanceOf(StreamError);
    expect(error.code).toBe('WAL_ERR_STREAM_WAL_REMOVED');
    expect(error.message).toContain('has already been removed');
    expect(error.message).toContain('replication slot');
    expect(error.cause).toBe(removed);
  });
});

describe('ReconnectBackoff', () => {
  it('starts at the configured delay, doubles up to 60 s and starts over after a reset', () => {
    const backoff = new ReconnectBackoff(5000);
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([
      5000,
      10_000,
      20_000,
      40_000,
      MAX_RECONNECT_DELAY_MS,
    ]);
    expect(backoff.next()).toBe(MAX_RECONNECT_DELAY_MS);
    backoff.reset();
    expect(backoff.next()).toBe(5000);
  });

  it('keeps a delay above the maximum as it is, and 0 as 0', () => {
    const slow = new ReconnectBackoff(120_000);
    expect([slow.next(), slow.next()]).toEqual([120_000, 120_000]);
    const immediate = new ReconnectBackoff(0);
    expect([immediate.next(), immediate.next()]).toEqual([0, 0]);
  });
});
