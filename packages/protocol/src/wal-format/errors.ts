import { WalError } from '../errors.js';

/** Invalid arguments to, or undecodable input for, the WAL page and record helpers. */
export class WalFormatError extends WalError {
  constructor(code: `WAL_ERR_WAL_FORMAT_${string}`, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}
