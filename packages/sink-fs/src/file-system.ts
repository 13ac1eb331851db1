import { constants } from 'node:fs';
import { type FileHandle, open, rename } from 'node:fs/promises';

/**
 * Small file-system steps shared by segment and history files. Each one reports failures as the
 * raw Node.js error; callers wrap them with `fileSystemError` and a description of the step.
 */

/** One shared, never-written buffer of zeros for padding (docs/adr/0004-padding.md: 1 MiB writes). */
let zeros: Buffer | undefined;
const PADDING_CHUNK = 1024 * 1024;

/** Writes `length` zero bytes from offset 0, as `pg_pwrite_zeros` does for a new segment. */
export async function writeZeros(handle: FileHandle, length: number): Promise<void> {
  zeros ??= Buffer.alloc(PADDING_CHUNK);
  let position = 0;
  while (position < length) {
    const chunk = Math.min(PADDING_CHUNK, length - position);
    await writeFully(handle, zeros.subarray(0, chunk), position);
    position += chunk;
  }
}

/** pwrite until every byte is written; a write that makes no progress is reported as ENOSPC, as PostgreSQL does. */
export async function writeFully(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset, position + offset);
    if (bytesWritten <= 0) throw noProgressError();
    offset += bytesWritten;
  }
}

/** Appends several buffers with one writev where possible (an LZ4 block header and its block). */
export async function writevFully(
  handle: FileHandle,
  chunks: readonly Buffer[],
  position: number,
): Promise<number> {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const { bytesWritten } = await handle.writev(chunks as Buffer[], position);
  if (bytesWritten === total) return total;
  // A short writev: finish chunk by chunk.
  let skip = bytesWritten;
  let at = position + bytesWritten;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    await writeFully(handle, chunk.subarray(skip), at);
    at += chunk.length - skip;
    skip = 0;
  }
  return total;
}

/**
 * Creates (or truncates) `path` for writing with exactly `mode`: the mode must not depend on the
 * process umask (pg_receivewal sets umask(pg_mode_mask)). A failed chmod closes the file again.
 */
export async function createFile(path: string, mode: number): Promise<FileHandle> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
  try {
    await handle.chmod(mode);
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
  return handle;
}

/**
 * Puts a file written under a temporary name in place so that a crash leaves either the old state
 * or the complete new file, as PostgreSQL's `durable_rename` does: fsync the file, rename it,
 * fsync the directory. `sync: false` (`--no-sync`) renames only. The handle stays open.
 */
export async function durableRename(
  handle: FileHandle,
  temporaryPath: string,
  path: string,
  directory: string,
  sync: boolean,
): Promise<void> {
  if (sync) await handle.sync();
  await rename(temporaryPath, path);
  if (sync) await syncDirectory(directory);
}

/** fsync a directory so that a rename or a new name in it survives a crash (`fsync_fname(dir)`). */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A write that made no progress: PostgreSQL reports it as ENOSPC (errno unset), so do we. */
export function noProgressError(): Error {
  return Object.assign(new Error('no space left on device (a write made no progress)'), { code: 'ENOSPC' });
}
