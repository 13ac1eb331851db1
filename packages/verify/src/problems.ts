/** What a problem is about; stable strings for monitoring (`--json`). */
export type ProblemKind =
  /** Segments recovery needs are not in the archive. */
  | 'missing-segments'
  /** Recovery would take an older timeline's file where a newer timeline's is needed. */
  | 'timeline-fallback'
  /** A `.partial` behind a newer segment of its timeline: its WAL was superseded or lost. */
  | 'stale-partial'
  /** A timeline whose history does not lead to the verified one. */
  | 'orphan-timeline'
  /** A history file that is missing, does not parse, or contradicts another one or the WAL. */
  | 'history'
  /** A page header: magic, info bits, page address or timeline. */
  | 'page-header'
  /** The long header of a segment's first page: segment size or block size. */
  | 'long-header'
  /** A segment of another database system (a different system identifier). */
  | 'foreign-system'
  /** A record header: its length, or its link to the previous record. */
  | 'record'
  /** A record whose CRC-32C does not match. */
  | 'record-crc'
  /** A continuation record that the next page does not continue, or a continuation nothing began. */
  | 'continuation'
  /** A completed segment shorter than a segment, or one whose WAL ends before its last byte. */
  | 'truncated-segment'
  /** A file that cannot be decompressed. */
  | 'corrupt-file';

/** One thing wrong with the archive. */
export interface Problem {
  kind: ProblemKind;
  /** The archive file the problem is in (a stored name); undefined for a range of missing files. */
  file?: string;
  /** The LSN of the first bad byte (or of the first missing one), as `X/X`. */
  lsn?: string;
  message: string;
}
