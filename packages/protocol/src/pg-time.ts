import { ProtocolError } from './errors.js';

/**
 * PostgreSQL timestamps count microseconds from 2000-01-01 00:00:00 UTC (`POSTGRES_EPOCH_JDATE`),
 * which is 946 684 800 s after the Unix epoch: 30 years including 7 leap days. Forgetting the leap
 * days gives the well-known 7-day error.
 */
export const POSTGRES_EPOCH_OFFSET_MS = 946_684_800_000;
const POSTGRES_EPOCH_OFFSET_US = BigInt(POSTGRES_EPOCH_OFFSET_MS) * 1000n;

/** `DT_NOBEGIN` / `DT_NOEND`: PostgreSQL's -infinity and infinity timestamps. */
export const POSTGRES_TIMESTAMP_MINUS_INFINITY = -0x8000000000000000n;
export const POSTGRES_TIMESTAMP_INFINITY = 0x7fffffffffffffffn;

/** Unix milliseconds (fractions kept to the microsecond) to PostgreSQL microseconds. */
export function toPostgresTimestamp(unixMs: number = Date.now()): bigint {
  if (!Number.isFinite(unixMs)) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `Cannot convert ${unixMs} to a PostgreSQL timestamp: expected a finite number of milliseconds`,
    );
  }
  return BigInt(Math.round(unixMs * 1000)) - POSTGRES_EPOCH_OFFSET_US;
}

/**
 * PostgreSQL microseconds to Unix milliseconds, rounded down to the millisecond. The infinity
 * values map to ±Infinity.
 */
export function fromPostgresTimestamp(us: bigint): number {
  if (us === POSTGRES_TIMESTAMP_INFINITY) return Number.POSITIVE_INFINITY;
  if (us === POSTGRES_TIMESTAMP_MINUS_INFINITY) return Number.NEGATIVE_INFINITY;
  const unixUs = us + POSTGRES_EPOCH_OFFSET_US;
  // BigInt division truncates toward zero; floor keeps pre-1970 instants on the right millisecond.
  let unixMs = unixUs / 1000n;
  if (unixUs < 0n && unixUs % 1000n !== 0n) unixMs -= 1n;
  return Number(unixMs);
}
