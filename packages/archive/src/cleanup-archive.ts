import { opendir, stat, unlink } from 'node:fs/promises';
import { systemErrorText } from '@wal/protocol';
import { type CleanupRule, parseOldestKept, selectForCleanup } from './cleanup.js';
import { ArchiveError, errnoCode } from './errors.js';
import { type ArchiveSource, isObjectStoreLocation, type OpenOptions, openArchive } from './source.js';

export interface CleanupOptions {
  /**
   * The archive: a directory path, an `s3://BUCKET/PREFIX` URL (configured from the AWS
   * environment, or `objectStore`), or a source already open (used as given, not closed).
   */
  readonly archive: string | ArchiveSource;
  /** OLDEST_KEPT_WALFILE as given (`%r` of archive_cleanup_command); see {@link parseOldestKept}. */
  readonly oldestKept: string;
  /** pg_archivecleanup's `-x`: see {@link CleanupRule.extension}. */
  readonly extension?: string;
  /** Only say what would go. */
  readonly dryRun?: boolean;
  /** For an `s3://` location: see {@link OpenOptions.objectStore}. */
  readonly objectStore?: OpenOptions['objectStore'];
}

/** What a cleanup does, step by step, for its caller to report. */
export type CleanupEvent =
  /** The rule is set: `path` (archive/oldest segment) and later positions stay. */
  | { readonly kind: 'keeping'; readonly path: string }
  /**
   * `path` is to go. The file is removed when the caller asks for the next event (so a report
   * printed on this event comes before the removal, as pg_archivecleanup prints); on a dry run it
   * stays.
   */
  | { readonly kind: 'removing'; readonly path: string; readonly name: string; readonly dryRun: boolean };

/** What a cleanup needs of an archive: the names in it, a path for each, and removal. */
interface CleanupTarget {
  /** What is printed for a file: `ARCHIVE/name`, or `s3://BUCKET/PREFIX/name`. */
  path(name: string): string;
  names(): Promise<string[]>;
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Removes from an archive what {@link selectForCleanup} selects, in pg_archivecleanup's order of
 * checks and with its failures (pg_archivecleanup.c): the archive location first (a missing
 * directory: `WAL_ERR_ARCHIVE_MISSING`; a malformed `s3://` URL:
 * `WAL_ERR_ARCHIVE_INVALID_LOCATION`), then the name (`WAL_ERR_ARCHIVE_INVALID_NAME`), then the
 * listing (`WAL_ERR_ARCHIVE_UNREADABLE`: also a missing bucket or a store that is down), then each
 * removal, stopping at the first that fails (`WAL_ERR_ARCHIVE_REMOVE`). A bucket is asked nothing
 * before the name is known to be good.
 */
export async function* cleanupArchive(options: CleanupOptions): AsyncGenerator<CleanupEvent, void, void> {
  const target = await openTarget(options);
  try {
    const rule = parseOldestKept(options.oldestKept, options.extension);
    yield { kind: 'keeping', path: target.path(rule.oldestKept) };
    const dryRun = options.dryRun === true;
    for (const name of selectForCleanup(await target.names(), rule)) {
      yield { kind: 'removing', path: target.path(name), name, dryRun };
      if (!dryRun) await target.remove(name);
    }
  } finally {
    await target.close();
  }
}

async function openTarget(options: CleanupOptions): Promise<CleanupTarget> {
  const { archive } = options;
  if (typeof archive !== 'string') return sourceTarget(archive, false);
  if (!isObjectStoreLocation(archive)) return directoryTarget(archive);
  const objectStore = options.objectStore;
  return sourceTarget(await openArchive(archive, objectStore ? { objectStore } : {}), true);
}

/** Any source (an object store): its own locations and messages. */
function sourceTarget(source: ArchiveSource, owned: boolean): CleanupTarget {
  return {
    path: (name) => source.locate(name),
    names: async () => (await source.list()).map((object) => object.name),
    remove: (name) => source.remove(name),
    close: async () => {
      if (owned) await source.close();
    },
  };
}

/**
 * A directory named by the caller, with pg_archivecleanup's paths and messages word for word (the
 * comparison test runs both side by side), where the directory source has the reader's.
 */
async function directoryTarget(archive: string): Promise<CleanupTarget> {
  await checkArchiveLocation(archive);
  // pg_archivecleanup joins with "/" whatever the archive ends with: the same paths are printed.
  const path = (name: string) => `${archive}/${name}`;
  return {
    path,
    names: () => readNames(archive),
    async remove(name) {
      try {
        await unlink(path(name));
      } catch (error) {
        throw new ArchiveError(
          'WAL_ERR_ARCHIVE_REMOVE',
          `could not remove file "${path(name)}": ${reason(error)}`,
          {
            cause: error,
            retryable: true,
          },
        );
      }
    },
    close: async () => {},
  };
}

async function checkArchiveLocation(archive: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(archive)).isDirectory();
  } catch (error) {
    const code = errnoCode(error);
    const message =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `archive location "${archive}" does not exist`
        : `could not look up archive location "${archive}": ${reason(error)}`;
    throw new ArchiveError('WAL_ERR_ARCHIVE_MISSING', message, { cause: error });
  }
  if (!isDirectory) {
    throw new ArchiveError('WAL_ERR_ARCHIVE_MISSING', `archive location "${archive}" is not a directory`);
  }
}

async function readNames(archive: string): Promise<string[]> {
  let directory: Awaited<ReturnType<typeof opendir>>;
  try {
    directory = await opendir(archive);
  } catch (error) {
    throw unreadableLocation(error, 'open', archive);
  }
  const names: string[] = [];
  try {
    for await (const entry of directory) names.push(entry.name);
  } catch (error) {
    throw unreadableLocation(error, 'read', archive);
  }
  return names;
}

function unreadableLocation(error: unknown, action: 'open' | 'read', archive: string): ArchiveError {
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_UNREADABLE',
    `could not ${action} archive location "${archive}": ${reason(error)}`,
    { cause: error, retryable: true },
  );
}

function reason(error: unknown): string {
  return systemErrorText(error) ?? (error instanceof Error ? error.message : String(error));
}
