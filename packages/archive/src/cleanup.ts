import { ArchiveError } from './errors.js';
import { parseArchiveName } from './names.js';

/**
 * Which archive files an archive_cleanup_command may remove: pg_archivecleanup's rules
 * (src/bin/pg_archivecleanup/pg_archivecleanup.c, PostgreSQL 15), as pure functions over names,
 * so that a directory and an object store are cleaned by the same decision.
 */

/** What to keep, from the OLDEST_KEPT_WALFILE argument and the `-x` extension. */
export interface CleanupRule {
  /** The oldest segment kept: 24 upper-case hex digits. Only its last 16 (the position) count. */
  readonly oldestKept: string;
  /**
   * pg_archivecleanup's `-x`: stripped from each name before it is judged, and only plain and
   * `.partial` names remain candidates, exactly as pg_archivecleanup decides. Undefined: every form
   * `wal receive` writes is a candidate (plain, `.gz`, `.lz4`, `.zst`, each also `.partial`).
   */
  readonly extension?: string;
}

const SEGMENT_NAME = /^[0-9A-F]{24}$/;
const PARTIAL_NAME = /^[0-9A-F]{24}\.partial$/;
/**
 * What sscanf's `%08X` needs after `<segment>.` in a backup history file name (pg_archivecleanup.c,
 * SetWALFileNameForCleanup): optional C white space, an optional sign, then a hex digit of either
 * case. Nothing after that digit is checked, so `….backup` alone passes (`ba` is hex).
 */
const BACKUP_OFFSET = /^[ \t\n\v\f\r]*[+-]?[0-9A-Fa-f]/;

/** pg_archivecleanup's TrimExtension: drops `extension` from the end when the name is longer. */
function trimExtension(name: string, extension: string | undefined): string {
  if (extension === undefined || extension === '') return name;
  return name.length > extension.length && name.endsWith(extension)
    ? name.slice(0, name.length - extension.length)
    : name;
}

/** IsBackupHistoryFileName plus the sscanf of SetWALFileNameForCleanup. */
function isBackupHistoryName(name: string): boolean {
  return (
    name.length > 24 &&
    /^[0-9A-F]{24}\./.test(name) &&
    name.endsWith('.backup') &&
    BACKUP_OFFSET.test(name.slice(25))
  );
}

/**
 * The oldest segment to keep, from what pg_archivecleanup accepts as OLDESTKEPTWALFILE: after
 * `extension` is trimmed, a segment name, `<segment>.partial` or a backup history file name
 * (`000000010000000000000010.00000020.backup`). Throws `WAL_ERR_ARCHIVE_INVALID_NAME` otherwise;
 * a `.history` name is refused too, as pg_archivecleanup refuses it.
 */
export function parseOldestKept(argument: string, extension?: string): CleanupRule {
  const name = trimExtension(argument, extension);
  if (SEGMENT_NAME.test(name) || PARTIAL_NAME.test(name) || isBackupHistoryName(name)) {
    return extension === undefined
      ? { oldestKept: name.slice(0, 24) }
      : { oldestKept: name.slice(0, 24), extension };
  }
  throw new ArchiveError(
    'WAL_ERR_ARCHIVE_INVALID_NAME',
    `invalid file name argument "${argument}": expected a WAL segment name (24 hexadecimal digits), alone, with ".partial" or as a backup history file (000000010000000000000010.00000020.backup)`,
  );
}

/**
 * Whether `name` goes: a segment file (see {@link CleanupRule.extension} for which forms count)
 * whose position (its last 16 hex digits) is before the oldest kept one's, whatever its timeline,
 * so that no segment of a parent timeline is removed too early (pg_archivecleanup.c,
 * CleanupPriorWALFiles). History files, backup history files and other names always stay.
 */
export function isRemovable(name: string, rule: CleanupRule): boolean {
  const keptPosition = rule.oldestKept.slice(8);
  if (rule.extension === undefined) {
    const parsed = parseArchiveName(name);
    return parsed?.kind === 'segment' && parsed.position < keptPosition;
  }
  const trimmed = trimExtension(name, rule.extension);
  return (SEGMENT_NAME.test(trimmed) || PARTIAL_NAME.test(trimmed)) && trimmed.slice(8, 24) < keptPosition;
}

/**
 * The names to remove, oldest position first (then by name), so that a cleanup cut short leaves
 * the archive without a hole. pg_archivecleanup removes in directory order; the set is the same.
 */
export function selectForCleanup(names: Iterable<string>, rule: CleanupRule): string[] {
  const removable: string[] = [];
  for (const name of names) if (isRemovable(name, rule)) removable.push(name);
  return removable.sort(
    (left, right) => compareText(left.slice(8), right.slice(8)) || compareText(left, right),
  );
}

function compareText(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}
