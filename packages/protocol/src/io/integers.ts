import { ProtocolError } from '../errors.js';

/**
 * Checked big-endian writes for fixed-layout messages. Node's own methods throw a RangeError on a
 * bad value; these throw a coded ProtocolError naming the field, like every other failure here.
 */
export function writeUint64(target: Buffer, value: bigint, offset: number, field: string): void {
  if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `${field} must be an unsigned 64-bit bigint, got ${String(value)}`,
    );
  }
  target.writeBigUInt64BE(value, offset);
}

export function writeInt64(target: Buffer, value: bigint, offset: number, field: string): void {
  if (typeof value !== 'bigint' || value < -0x8000000000000000n || value > 0x7fffffffffffffffn) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `${field} must be a signed 64-bit bigint, got ${String(value)}`,
    );
  }
  target.writeBigInt64BE(value, offset);
}

export function writeUint32(target: Buffer, value: number, offset: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `${field} must be an unsigned 32-bit integer, got ${String(value)}`,
    );
  }
  target.writeUInt32BE(value, offset);
}
