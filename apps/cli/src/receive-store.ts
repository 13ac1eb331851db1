import type { UploadStore } from '@wal/sink-s3';

/**
 * Opens the object store of `-D s3://BUCKET/PREFIX`. `@wal/s3` and the AWS SDK behind it are
 * imported here, on use, and stay outside the bundle (scripts/bundle-receive.mjs): a run into a
 * directory never loads them. The URL is checked (WAL_ERR_S3_URL) before anything connects.
 */
export async function openArchiveStore(
  url: string,
  env: Record<string, string | undefined>,
): Promise<UploadStore & { close(): void }> {
  const { openS3Store } = await import('@wal/s3');
  return openS3Store(url, { env });
}
