import { ProtocolError } from './errors.js';

/** Largest LSN: a 64-bit unsigned byte position in the WAL. */
export const MAX_LSN = 0xffffffffffffffffn;

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses 'X/X' (PostgreSQL's pg_lsn text form: two groups of 1 to 8 hex digits, any case, padded
 * or not). Nothing else is accepted: no spaces, signs, '0x' or extra groups, because a mistyped
 * start position must fail loudly rather than stream from the wrong place.
 */
export function parseLsn(text: string): bigint {
  const match = LSN_PATTERN.exec(text);
  if (match === null) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_LSN',
      `Invalid LSN ${JSON.stringify(text)}: expected two groups of 1 to 8 hex digits separated by '/', ` +
        "such as '0/16B3748'",
    );
  }
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats like PostgreSQL up to 18 (`%X/%X`): uppercase, unpadded, e.g. '0/700090', '16/B374D848'. */
export function formatLsn(lsn: bigint): string {
  if (typeof lsn !== 'bigint' || lsn < 0n || lsn > MAX_LSN) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_LSN',
      `Invalid LSN ${String(lsn)}: an LSN is an unsigned 64-bit bigint`,
    );
  }
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
