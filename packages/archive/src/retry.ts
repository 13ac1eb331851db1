import { setTimeout as sleep } from 'node:timers/promises';
import { ArchiveError } from './errors.js';
import { type RestoreOptions, type RestoreResult, restoreFromArchive } from './restore.js';

export interface RetryOptions {
  /** Tries in all (default 3). */
  attempts?: number;
  /** Wait before the second try; doubled before each further one (default 500 ms). */
  firstDelayMs?: number;
  /** Told about each failure that will be tried again. */
  onRetry?: (error: ArchiveError, attempt: number, delayMs: number) => void;
}

/** Errors that another try cannot change: a bad name or URL, a Node.js without the codec. */
const FINAL_CODES = new Set([
  'WAL_ERR_ARCHIVE_INVALID_NAME',
  'WAL_ERR_ARCHIVE_INVALID_LOCATION',
  'WAL_ERR_ARCHIVE_COMPRESSION_UNSUPPORTED',
]);

/**
 * {@link restoreFromArchive}, tried again with a doubling delay after any read or write failure:
 * storage that fails for a moment (a network file system, an object store mount) must not end a
 * recovery. "Not found" is an answer, not a failure, and is returned at once.
 */
export async function restoreWithRetries(
  options: RestoreOptions,
  retry: RetryOptions = {},
): Promise<RestoreResult> {
  const attempts = Math.max(1, retry.attempts ?? 3);
  let delayMs = retry.firstDelayMs ?? 500;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await restoreFromArchive(options);
    } catch (error) {
      if (!(error instanceof ArchiveError) || FINAL_CODES.has(error.code) || attempt >= attempts) throw error;
      retry.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, undefined, { signal: options.signal });
      delayMs *= 2;
    }
  }
}
