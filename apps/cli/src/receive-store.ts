import type { UploadStore } from '@wal/sink-s3';

/**
 * What `-D s3://BUCKET/PREFIX` needs beyond the client: the sink, and the store. receive.ts imports
 * this module only for such a run, so a run into a directory loads neither (nor node:crypto); the
 * bundle keeps it as a chunk of its own, and `@wal/s3` with the AWS SDK behind it stays outside
 * the bundle (scripts/bundle-receive.mjs), imported on use.
 */
export { S3Sink } from '@wal/sink-s3';

/** Opens the store; the URL is checked (WAL_ERR_S3_URL) before anything connects. */
export async function openArchiveStore(
  url: string,
  env: Record<string, string | undefined>,
): Promise<UploadStore & { close(): void }> {
  const { openS3Store } = await import('@wal/s3');
  return openS3Store(url, { env });
}
