import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseHistoryFileName, parseWalFileName, segmentStartLsn } from '@wal/protocol';

/**
 * A file of the spool that goes to the store: a history file, a complete segment, or the
 * `.partial` of a segment the stream left behind (the last one of a timeline before a switch).
 */
export interface SpoolFile {
  readonly name: string;
  readonly kind: 'history' | 'segment' | 'partial';
  readonly timeline: number;
  /** The segment; -1 for a history file, which goes before every segment of its timeline. */
  readonly segmentNumber: bigint;
}

/** Upload order: by timeline, its history file first, then its segments by number. */
export function compareUploadOrder(left: SpoolFile, right: SpoolFile): number {
  if (left.timeline !== right.timeline) return left.timeline - right.timeline;
  if (left.segmentNumber !== right.segmentNumber) return left.segmentNumber < right.segmentNumber ? -1 : 1;
  return left.name < right.name ? -1 : left.name > right.name ? 1 : 0;
}

/** The first WAL position a spool file holds (0 for a history file). */
export function startLsnOf(file: SpoolFile, segmentSize: number): bigint {
  return file.segmentNumber < 0n ? 0n : segmentStartLsn(file.segmentNumber, segmentSize);
}

export function historyFile(name: string): SpoolFile | undefined {
  const timeline = parseHistoryFileName(name);
  if (timeline === undefined) return undefined;
  return { name, kind: 'history', timeline, segmentNumber: -1n };
}

export function segmentFile(name: string, segmentSize: number): SpoolFile | undefined {
  const parsed = parseWalFileName(name, segmentSize);
  if (parsed === undefined) return undefined;
  return {
    name,
    kind: parsed.partial ? 'partial' : 'segment',
    timeline: parsed.timeline,
    segmentNumber: parsed.segmentNumber,
  };
}

/** What a spool directory holds for the store, in upload order (temporary files are not listed). */
export async function listSpool(directory: string, segmentSize: number): Promise<SpoolFile[]> {
  const files: SpoolFile[] = [];
  for (const name of await readdir(directory)) {
    const file = historyFile(name) ?? segmentFile(name, segmentSize);
    if (file !== undefined) files.push(file);
  }
  return files.sort(compareUploadOrder);
}

/** Size of a spool file, or undefined when it is gone. */
export async function sizeOf(directory: string, name: string): Promise<number | undefined> {
  try {
    return (await stat(join(directory, name))).size;
  } catch {
    return undefined;
  }
}
