/** Helpers shared by the package's tests (not part of the build: see tsconfig exclude). */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { S3Error } from './index.js';

/** The `S3Error` that `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function caught(promise: Promise<unknown>): Promise<S3Error> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(S3Error);
  return error as S3Error;
}

/** The MD5 of `body` in hex, as `@wal/s3` stores it in the `wal-md5` metadata. */
export const md5Hex = (body: Buffer) => createHash('md5').update(body).digest('hex');
