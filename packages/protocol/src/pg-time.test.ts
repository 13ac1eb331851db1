import { describe, expect, it } from 'vitest';
import { ProtocolError } from './errors.js';
import {
  fromPostgresTimestamp,
  POSTGRES_EPOCH_OFFSET_MS,
  POSTGRES_TIMESTAMP_INFINITY,
  POSTGRES_TIMESTAMP_MINUS_INFINITY,
  toPostgresTimestamp,
} from './pg-time.js';

describe('PostgreSQL timestamps', () => {
  it('uses 2000-01-01 UTC as the epoch (30 years and 7 leap days after 1970)', () => {
    expect(POSTGRES_EPOCH_OFFSET_MS).toBe((30 * 365 + 7) * 86_400_000);
    expect(new Date(POSTGRES_EPOCH_OFFSET_MS).toISOString()).toBe('2000-01-01T00:00:00.000Z');
  });

  // Known pairs: the integer is what `SELECT (extract(epoch FROM t) - 946684800) * 1000000` gives.
  it.each<[string, bigint]>([
    ['2000-01-01T00:00:00.000Z', 0n],
    ['2000-01-08T00:00:00.000Z', 604_800_000_000n],
    ['1970-01-01T00:00:00.000Z', -946_684_800_000_000n],
    ['2024-01-01T00:00:00.000Z', 757_382_400_000_000n],
    ['2026-11-22T13:35:00.123Z', 848_669_700_123_000n],
    ['1999-12-31T23:59:59.999Z', -1_000n],
  ])('%s is %s microseconds', (iso, microseconds) => {
    const unixMs = Date.parse(iso);
    expect(toPostgresTimestamp(unixMs)).toBe(microseconds);
    expect(fromPostgresTimestamp(microseconds)).toBe(unixMs);
  });

  it('keeps fractions of a millisecond as microseconds and floors on the way back', () => {
    expect(toPostgresTimestamp(POSTGRES_EPOCH_OFFSET_MS + 0.25)).toBe(250n);
    expect(fromPostgresTimestamp(999n)).toBe(POSTGRES_EPOCH_OFFSET_MS);
    expect(fromPostgresTimestamp(-1n)).toBe(POSTGRES_EPOCH_OFFSET_MS - 1);
  });

  it('defaults to now', () => {
    const before = toPostgresTimestamp(Date.now());
    const now = toPostgresTimestamp();
    expect(now >= before).toBe(true);
    expect(now - before < 60_000_000n).toBe(true);
  });

  it('maps the infinity timestamps to ±Infinity', () => {
    expect(fromPostgresTimestamp(POSTGRES_TIMESTAMP_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(fromPostgresTimestamp(POSTGRES_TIMESTAMP_MINUS_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('refuses non-finite input', () => {
    expect(() => toPostgresTimestamp(Number.NaN)).toThrow(ProtocolError);
    expect(() => toPostgresTimestamp(Number.POSITIVE_INFINITY)).toThrow(/finite/);
  });
});
