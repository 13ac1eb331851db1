import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** The access key pair s3rver accepts (its built-in account). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3rverOptions {
  /** Where s3rver keeps buckets (default: a new temporary directory, removed by `stop`). */
  directory?: string;
  /** Buckets that exist from the start. */
  buckets: readonly string[];
}

export interface RunningS3 {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** The AWS configuration a store needs to reach this server (path style through the endpoint). */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

export interface RunningS3rver extends RunningS3 {
  readonly directory: string;
}

/**
 * Starts s3rver 3.7.1, a real S3 HTTP implementation on disk, on a free loopback port. It does
 * not enforce `If-None-Match` nor check Content-MD5: faults are the scripted endpoint's job.
 */
export async function startS3rver(options: S3rverOptions): Promise<RunningS3rver> {
  const ownDirectory = options.directory === undefined;
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'wal-s3rver-')));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({ name, configs: [] })),
  });
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    directory,
    env: {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: endpoint,
    },
    async stop() {
      await server.close();
      if (ownDirectory) await rm(directory, { recursive: true, force: true });
    },
  };
}
