import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { systemErrorText } from '@wal/protocol';
import { ArchiveError, errnoCode, unreadable } from './errors.js';
import type { ArchiveObject, ArchiveSource } from './source.js';

const READ_CHUNK = 1024 * 1024;

/** An archive in a local (or mounted) directory: what `wal receive -D DIRECTORY` writes. */
export function directorySource(directory: string): ArchiveSource {
  const path = (name: string) => join(directory, name);
  return {
    location: directory,
    locate: path,
    async check() {
      let isDirectory: boolean;
      try {
        isDirectory = (await stat(directory)).isDirectory();
      } catch (error) {
        throw unreadable(error, `could not open archive directory "${directory}"`);
      }
      if (!isDirectory)
        throw unreadable(new Error('not a directory'), `could not open archive directory "${directory}"`);
    },
    async list(): Promise<ArchiveObject[]> {
      try {
        return (await readdir(directory)).map((name) => ({ name, size: undefined }));
      } catch (error) {
        throw unreadable(error, `could not read archive directory "${directory}"`);
      }
    },
    async stat(name) {
      try {
        return { name, size: (await stat(path(name))).size };
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return undefined;
        throw unreadable(error, `could not look up "${name}" in archive directory "${directory}"`);
      }
    },
    async read(name) {
      try {
        return await readFile(path(name));
      } catch (error) {
        throw unreadable(error, `could not read "${path(name)}"`);
      }
    },
    // Opening is lazy: a failure to open is the stream's first error, as a read failure is.
    stream: async (name): Promise<Readable> => createReadStream(path(name), { highWaterMark: READ_CHUNK }),
    async readRange(name, start, end) {
      try {
        const handle = await open(path(name), 'r');
        try {
          const buffer = Buffer.alloc(Math.max(0, end - start));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
          return buffer.subarray(0, bytesRead);
        } finally {
          await handle.close();
        }
      } catch (error) {
        throw unreadable(error, `could not read "${path(name)}"`);
      }
    },
    async remove(name) {
      try {
        await unlink(path(name));
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return;
        const reason = systemErrorText(error) ?? (error instanceof Error ? error.message : String(error));
        throw new ArchiveError('WAL_ERR_ARCHIVE_REMOVE', `could not remove file "${path(name)}": ${reason}`, {
          cause: error,
          retryable: true,
        });
      }
    },
    close: async () => {},
  };
}
