import { type FileHandle, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { historyFileName } from '@wal/protocol';
import { errnoCode, fileSystemError } from './errors.js';
import { createFile, durableRename, writeFully } from './file-system.js';

/** Suffix of the temporary name a history file is written under before its rename. */
export const HISTORY_TEMPORARY_SUFFIX = '.tmp';

/** `existsTimeLineHistoryFile`: is `%08X.history` in the directory? Timeline 1 never has one. */
export async function historyFileExists(directory: string, timeline: number): Promise<boolean> {
  const name = historyFileName(timeline);
  try {
    return (await stat(join(directory, name))).isFile();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw fileSystemError(error, `could not stat timeline history file "${name}"`, directory);
  }
}

/**
 * `writeTimeLineHistoryFile`, with the quirk of spec §3.7 fixed: the file is always written
 * uncompressed (pg_receivewal compresses it under -Z and then never finds it again), to
 * `<name>.tmp`, then fsynced and renamed, and the directory fsynced (unless no-sync). A failure
 * removes the temporary file and is an error, not ignored (spec §10.7).
 */
export async function writeHistoryFile(
  directory: string,
  timeline: number,
  content: Buffer,
  options: { sync: boolean; fileMode: number },
): Promise<void> {
  const name = historyFileName(timeline);
  const temporaryPath = join(directory, `${name}${HISTORY_TEMPORARY_SUFFIX}`);
  let handle: FileHandle | undefined;
  try {
    handle = await createFile(temporaryPath, options.fileMode);
    await writeFully(handle, content, 0);
    await durableRename(handle, temporaryPath, join(directory, name), directory, options.sync);
    await handle.close();
    handle = undefined;
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temporaryPath).catch(() => {});
    throw fileSystemError(error, `could not write timeline history file "${name}"`, directory);
  }
}
