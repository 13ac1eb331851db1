import { ArchiveError } from './errors.js';
import type { ArchiveSource } from './source.js';

/** Placeholder until @wal/s3 lands: the object-store source. */
export function objectStoreSource(location: string): ArchiveSource {
  throw new ArchiveError('WAL_ERR_ARCHIVE_UNREADABLE', `cannot read "${location}" yet`);
}
