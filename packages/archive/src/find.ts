import type { WalCompression } from '@wal/protocol';
import { type ArchiveName, COMPRESSION_SUFFIXES, parseArchiveName, parseWantedName } from './names.js';
import { type ArchiveSource, withArchive } from './source.js';

/** A file found in the archive for a wanted name. */
export interface ArchiveFile {
  /** The name PostgreSQL asked for (`%f`). */
  wanted: string;
  kind: 'segment' | 'history';
  /** The stored name: `wanted` plus any compression suffix and `.partial`. */
  name: string;
  /** Where it is, for messages: a path, or an object's URL. */
  path: string;
  /** The archive it is read from. */
  source: ArchiveSource;
  /** Its stored (compressed) size, when known. */
  size?: number | undefined;
  compression: WalCompression;
  /** A segment the receiver had not completed: to be padded with zeros to the segment size. */
  partial: boolean;
}

/** One file of {@link listArchive}: a segment or history file name, with its stored name. */
export type ArchiveEntry = ArchiveName & { name: string; size?: number | undefined };

export interface FindOptions {
  /**
   * Also serve `<wanted>.partial` (any compression) when no complete segment exists and it is the
   * newest segment of its timeline in the archive. Default true.
   */
  partial?: boolean;
}

/**
 * Every segment and history file in the archive (a directory path, an `s3://` URL or a source),
 * ordered by timeline, then position, then complete before partial. Other names (temporary files,
 * `.backup`, foreign files) are left out.
 */
export async function listArchive(archive: string | ArchiveSource): Promise<ArchiveEntry[]> {
  const objects = await withArchive(archive, (source) => source.list());
  const entries: ArchiveEntry[] = [];
  for (const { name, size } of objects) {
    const parsed = parseArchiveName(name);
    if (parsed !== undefined) entries.push({ ...parsed, name, size });
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
 * Undefined when the archive does not have it. An archive that cannot be reached (a missing
 * directory or bucket) is an error, never "not found": that answer would end a recovery early.
 * A location string is opened for the call; pass a source to reuse its connections.
 */
export async function findArchiveFile(
  archive: string | ArchiveSource,
  wanted: string,
  options: FindOptions = {},
): Promise<ArchiveFile | undefined> {
  const parsed = parseWantedName(wanted);
  return withArchive(archive, async (source) => {
    const found = await lookUp(source, parsed, wanted, options);
    if (found === undefined) await source.check();
    return found;
  });
}

async function lookUp(
  source: ArchiveSource,
  parsed: ArchiveName,
  wanted: string,
  options: FindOptions,
): Promise<ArchiveFile | undefined> {
  const file = (name: string, compression: WalCompression, partial: boolean, size: number | undefined) => ({
    wanted,
    kind: parsed.kind,
    name,
    path: source.locate(name),
    source,
    size,
    compression,
    partial,
  });
  if (parsed.kind === 'history') {
    const found = await source.stat(wanted);
    return found === undefined ? undefined : file(wanted, 'none', false, found.size);
  }
  for (const { suffix, compression } of COMPRESSION_SUFFIXES) {
    const found = await source.stat(`${wanted}${suffix}`);
    if (found !== undefined) return file(found.name, compression, false, found.size);
  }
  if (options.partial === false) return undefined;
  for (const { suffix, compression } of COMPRESSION_SUFFIXES) {
    const found = await source.stat(`${wanted}${suffix}.partial`);
    if (found === undefined) continue;
    if (!(await isNewestOfTimeline(source, parsed))) return undefined;
    return file(found.name, compression, true, found.size);
  }
  return undefined;
}

async function isNewestOfTimeline(source: ArchiveSource, wanted: ArchiveName): Promise<boolean> {
  if (wanted.kind !== 'segment') return false;
  const entries = await listArchive(source);
  return !entries.some(
    (entry) =>
      entry.kind === 'segment' && entry.timeline === wanted.timeline && entry.position > wanted.position,
  );
}
