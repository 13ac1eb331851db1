import {
  parseHistoryFileName,
  WAL_COMPRESSION_SUFFIX,
  type WalCompression,
  walCompressionOfSuffix,
} from '@wal/protocol';
import { ArchiveError } from './errors.js';

/** A file name in an archive that `wal receive` (or pg_receivewal) writes. */
export type ArchiveName =
  | {
      kind: 'segment';
      /** The name PostgreSQL asks for: 24 upper-case hex digits. */
      walFileName: string;
      timeline: number;
      /**
       * The 16 hex digits after the timeline (log and segment): compared as text, they order
       * segments without knowing the segment size.
       */
      position: string;
      partial: boolean;
      compression: WalCompression;
    }
  | { kind: 'history'; timeline: number };

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{16})(\.gz|\.lz4|\.zst)?(\.partial)?$/;
/** Suffixes tried for a wanted name, in the order `wal receive -Z` could have written them. */
export const COMPRESSION_SUFFIXES: readonly { suffix: string; compression: WalCompression }[] =
  Object.entries(WAL_COMPRESSION_SUFFIX).map(([compression, suffix]) => ({
    suffix,
    compression: compression as WalCompression,
  }));

/** What an archive file name stands for; undefined for names the archive does not use. */
export function parseArchiveName(name: string): ArchiveName | undefined {
  const segment = SEGMENT_NAME.exec(name);
  if (segment !== null) {
    return {
      kind: 'segment',
      walFileName: `${segment[1]}${segment[2]}`,
      timeline: Number.parseInt(segment[1]!, 16),
      position: segment[2]!,
      partial: segment[4] !== undefined,
      compression: walCompressionOfSuffix(segment[3])!,
    };
  }
  const timeline = parseHistoryFileName(name);
  return timeline === undefined ? undefined : { kind: 'history', timeline };
}

/**
 * Checks a name PostgreSQL asks for (`%f`): a segment name or a history file name, nothing else
 * (no suffix, no path), so it can never reach outside the archive.
 */
export function parseWantedName(name: string): ArchiveName & { kind: 'segment' | 'history' } {
  const parsed = parseArchiveName(name);
  if (
    parsed === undefined ||
    (parsed.kind === 'segment' && (parsed.partial || parsed.compression !== 'none'))
  ) {
    throw new ArchiveError(
      'WAL_ERR_ARCHIVE_INVALID_NAME',
      `"${name}" is not a WAL file name: expected 24 hexadecimal digits (a segment) or 8 and ".history", as PostgreSQL passes in %f.`,
    );
  }
  return parsed;
}
