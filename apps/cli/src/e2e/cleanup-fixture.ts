import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The mixed archive `wal cleanup` is tested on: timelines, every compression, `.partial`,
 * `.history`, `.backup` and foreign names. The comparison with pg_archivecleanup writes it into
 * a directory; the object-store test uploads the same files into a bucket.
 */

const TIMELINES = ['00000001', '00000002', '0000000A', 'FFFFFFFF'];
const POSITIONS = [
  '000000000000000E',
  '000000000000000F',
  '0000000000000010',
  '0000000000000011',
  '0000000100000000',
];
const SEGMENT_FORMS = ['', '.gz', '.lz4', '.zst', '.partial', '.gz.partial', '.lz4.partial', '.zst.partial'];
/** Forms that are no segment of our archive, of which pg_archivecleanup -x takes some. */
const OTHER_FORMS = ['.partial.gz', '.partial.lz4', '.gz.gz', '.bz2', '.tmp', '.gz.partial.tmp'];
const OTHER_NAMES = [
  '00000002.history',
  '0000000A.history',
  '00000002.history.gz',
  '00000001000000000000000E.00000028.backup',
  '00000001000000000000000E.00000028.backup.gz',
  '00000001000000000000000e',
  '00000001000000000000000',
  '0000000100000000000000001',
  'x00000001000000000000000E',
  'README',
];

/** Every file of the mixed archive, by name, with its contents. */
export function mixedArchiveFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const timeline of TIMELINES)
    for (const position of POSITIONS)
      for (const form of [...SEGMENT_FORMS, ...OTHER_FORMS]) files.set(`${timeline}${position}${form}`, form);
  for (const name of OTHER_NAMES) files.set(name, name);
  return files;
}

/** Every name of the mixed archive (and an `archive_status` directory, which both must skip). */
export function mixedArchive(directory: string): void {
  mkdirSync(directory);
  for (const [name, contents] of mixedArchiveFiles()) writeFileSync(join(directory, name), contents);
  mkdirSync(join(directory, 'archive_status'));
}

export const OLDEST_KEPT = [
  '000000010000000000000010',
  '0000000A0000000000000010.partial',
  '000000020000000000000010.00000028.backup',
  '000000010000000000000011',
  'FFFFFFFF0000000100000000',
  '00000001000000000000000E',
];
export const EXTENSIONS = ['.gz', '.lz4', '.zst', '.partial', '.gz.partial', '.bz2', '.tmp', '.gz.gz'];
