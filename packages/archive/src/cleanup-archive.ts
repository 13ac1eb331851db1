import { opendir, stat, unlink } from 'node:fs/promises';
import { systemErrorText } from '@wal/protocol';
import { type CleanupRule, parseOldestKept, selectForCleanup } from './cleanup.js';
import { ArchiveError, errnoCode } from './errors.js';

export interface CleanupOptions {
  /** The archive directory. */
  readonly archive: string;
  /** OLDEST_KEPT_WALFILE as given (`%r` of archive_cleanup_command); see {@link parseOldestKept}. */
  readonly oldestKept: string;
  /** pg_archivecleanup's `-x`: see {@link CleanupRule.extension}. */
  readonly extension?: string;
  /** Only say what would go. */
  readonly dryRun?: boolean;
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

/**
 * Removes from a directory archive what {@link selectForCleanup} selects, in pg_archivecleanup's
 * order of checks and with its failures (pg_archivecleanup.c): a missing archive
 * (`WAL_ERR_ARCHIVE_MISSING`) before a bad name (`WAL_ERR_ARCHIVE_INVALID_NAME`), then the listing
 * (`WAL_ERR_ARCHIVE_UNREADABLE`), then each removal, stopping at the first that fails
 * (`WAL_ERR_ARCHIVE_REMOVE`).
 */
export async function* cleanupArchive(options: CleanupOptions): AsyncGenerator<CleanupEvent, void, void> {
  const { archive } = options;
  await checkArchiveLocation(archive);
  const rule = parseOldestKept(options.oldestKept, options.extension);
  yield { kind: 'keeping', path: `${archive}/${rule.oldestKept}` };
  const dryRun = options.dryRun === true;
  for (const name of selectForCleanup(await readNames(archive), rule)) {
    // pg_archivecleanup joins with "/" whatever the archive ends with: the same paths are printed.
    const path = `${archive}/${name}`;
    yield { kind: 'removing', path, name, dryRun };
    if (dryRun) continue;
    try {
      await unlink(path);
    } catch (error) {
      throw new ArchiveError('WAL_ERR_ARCHIVE_REMOVE', `could not remove file "${path}": ${reason(error)}`, {
        cause: error,
        retryable: true,
      });
    }
  }
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
