export { type CleanupRule, isRemovable, parseOldestKept, selectForCleanup } from './cleanup.js';
export { type CleanupEvent, type CleanupOptions, cleanupArchive } from './cleanup-archive.js';

export { directorySource } from './directory-source.js';
export { ArchiveError, type ArchiveErrorCode } from './errors.js';
export {
  type ArchiveEntry,
  type ArchiveFile,
  type FindOptions,
  findArchiveFile,
  listArchive,
} from './find.js';
export { type ArchiveName, parseArchiveName, parseWantedName } from './names.js';
export {
  defaultSpoolDirectory,
  type PrefetchOptions,
  prefetcherRunning,
  runPrefetcher,
  takeFromSpool,
} from './prefetch.js';
export { readArchiveFile, readArchiveFileHead } from './read.js';
export { type RestoreOptions, type RestoreResult, restoreFromArchive } from './restore.js';
export { type RetryOptions, restoreWithRetries } from './retry.js';
export {
  type ArchiveObject,
  type ArchiveSource,
  isObjectStoreLocation,
  type OpenOptions,
  openArchive,
  withArchive,
} from './source.js';
