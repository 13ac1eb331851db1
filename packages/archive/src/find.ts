import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { WalCompression } from '@wal/protocol';
import { errnoCode, unreadable } from './errors.js';
import { type ArchiveName, COMPRESSION_SUFFIXES, parseArchiveName, parseWantedName } from './names.js';

/** A file found in the archive for a wanted name. */
export interface ArchiveFile {
  /** The name PostgreSQL asked for (`%f`). */
  wanted: string;
  kind: 'segment' | 'history';
  /** The stored name: `wanted` plus any compression suffix and `.partial`. */
  name: string;
  path: string;
  compression: WalCompression;
  /** A segment the receiver had not completed: to be padded with zeros to the segment size. */
  partial: boolean;
}

/** One file of {@link listArchive}: a segment or history file name, with its stored name. */
export type ArchiveEntry = ArchiveName & { name: string };

export interface FindOptions {
  /**
   * Also serve `<wanted>.partial` (any compression) when no complete segment exists and it is the
   * newest segment of its timeline in the archive. Default true.
   */
  partial?: boolean;
}

/**
 * Every segment and history file in the archive, ordered by timeline, then position, then
 * complete before partial. Other names (temporary files, `.backup`, foreign files) are left out.
 */
export async function listArchive(directory: string): Promise<ArchiveEntry[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    throw unreadable(error, `could not read archive directory "${directory}"`);
  }
  const entries: ArchiveEntry[] = [];
  for (const name of names) {
    const parsed = parseArchiveName(name);
    if (parsed !== undefined) entries.push({ ...parsed, name });
  }
  return entries.sort(compareEntries);
}

function compareEntries(left: ArchiveEntry, right: ArchiveEntry): number {
  if (left.timeline !== right.timeline) return left.timeline - right.timeline;
  if (left.kind !== right.kind) return left.kind === 'history' ? -1 : 1;
  if (left.kind === 'segment' && right.kind === 'segment') {
    if (left.position !== right.position) return left.position < right.position ? -1 : 1;
    if (left.partial !== right.partial) return left.partial ? 1 : -1;
  }
  return left.name < right.name ? -1 : left.name > right.name ? 1 : 0;
}

/**
 * Finds `wanted` (a `%f` name) in the archive: a history file as stored; a segment plain or in any
 * compression `wal receive` writes; else, with `partial`, its `.partial` if no later segment of the
 * same timeline is stored (a stale partial behind a newer segment holds WAL that was superseded).
 * Undefined when the archive does not have it. A missing or unreadable archive directory is an
 * error, never "not found": that answer would end a recovery early.
 */
export async function findArchiveFile(
  directory: string,
  wanted: string,
  options: FindOptions = {},
): Promise<ArchiveFile | undefined> {
  const parsed = parseWantedName(wanted);
  await checkArchiveDirectory(directory);
  if (parsed.kind === 'history') {
    const found = await exists(directory, wanted);
    return found
      ? {
          wanted,
          kind: 'history',
          name: wanted,
          path: join(directory, wanted),
          compression: 'none',
          partial: false,
        }
      : undefined;
  }
  for (const { suffix, compression } of COMPRESSION_SUFFIXES) {
    const name = `${wanted}${suffix}`;
    if (await exists(directory, name)) {
      return { wanted, kind: 'segment', name, path: join(directory, name), compression, partial: false };
    }
  }
  if (options.partial === false) return undefined;
  for (const { suffix, compression } of COMPRESSION_SUFFIXES) {
    const name = `${wanted}${suffix}.partial`;
    if (!(await exists(directory, name))) continue;
    if (!(await isNewestOfTimeline(directory, parsed))) return undefined;
    return { wanted, kind: 'segment', name, path: join(directory, name), compression, partial: true };
  }
  return undefined;
}

async function checkArchiveDirectory(directory: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(directory)).isDirectory();
  } catch (error) {
    throw unreadable(error, `could not open archive directory "${directory}"`);
  }
  if (!isDirectory)
    throw unreadable(new Error('not a directory'), `could not open archive directory "${directory}"`);
}

async function exists(directory: string, name: string): Promise<boolean> {
  try {
    await stat(join(directory, name));
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw unreadable(error, `could not look up "${name}" in archive directory "${directory}"`);
  }
}

async function isNewestOfTimeline(directory: string, wanted: ArchiveName): Promise<boolean> {
  if (wanted.kind !== 'segment') return false;
  const entries = await listArchive(directory);
  return !entries.some(
    (entry) =>
      entry.kind === 'segment' && entry.timeline === wanted.timeline && entry.position > wanted.position,
  );
}
